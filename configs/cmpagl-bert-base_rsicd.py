# CMPAGL on RSICD with the paper's text stack: BERT-base split 6 + 6 from a local
# bert-base-uncased folder (data/pretrained/bert-base-uncased, or
# --cfg-options text_weights=PATH), [CLS] text feature. Otherwise as cmpagl_rsicd.py.
_base_ = [
    '_base_/models/cmpagl_gswin_bert-base.py',
    '_base_/datasets/rsicd.py',
    '_base_/schedules/paper_50e.py',
    '_base_/default_runtime.py',
]
test_cfg = dict(reranker=dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9))
