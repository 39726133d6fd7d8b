# cmpagl_rsicd.py (RSICD, paper Table II) with nothing to download: the packaged MiniLM-L6
# text and fusion stack (6 + 6, width 384, mean-pooled text feature) and Gswin at random
# initialisation (_base_/models/cmpagl_gswin_minilm-l6.py). For machines without network;
# not the paper's model.
_base_ = [
    '_base_/models/cmpagl_gswin_minilm-l6.py',
    '_base_/datasets/rsicd.py',
    '_base_/schedules/paper_50e.py',
    '_base_/default_runtime.py',
]
test_cfg = dict(reranker=dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9))
