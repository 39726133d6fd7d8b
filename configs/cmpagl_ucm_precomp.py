# CMPAGL on UCM-Captions, AMFMN/GaLR protocol: the precomp files' train set and their
# 210-image test set (= the Karpathy JSON's val split); 210 train images held out select the
# checkpoint (never the test split). Otherwise as cmpagl_ucm.py.
_base_ = [
    '_base_/models/cmpagl_gswin_bert-base.py',
    '_base_/datasets/ucm_captions_precomp.py',
    '_base_/schedules/paper_50e.py',
    '_base_/default_runtime.py',
]
test_cfg = dict(reranker=dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9))
