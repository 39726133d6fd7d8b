# CMPAGL on Sydney-Captions (paper Table II), Karpathy JSON protocol (train 497 / val 58 /
# test 58); cmpagl_sydney_precomp.py follows the AMFMN/GaLR protocol instead.
_base_ = [
    '_base_/models/cmpagl_gswin_bert-base.py',
    '_base_/datasets/sydney_captions.py',
    '_base_/schedules/paper_50e.py',
    '_base_/default_runtime.py',
]
test_cfg = dict(reranker=dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9))
