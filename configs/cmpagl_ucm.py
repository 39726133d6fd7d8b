# CMPAGL on UCM-Captions (paper Table II), Karpathy JSON protocol (train 1,680 / val 210 /
# test 210); cmpagl_ucm_precomp.py follows the AMFMN/GaLR protocol instead.
_base_ = [
    '_base_/models/cmpagl_gswin_bert-base.py',
    '_base_/datasets/ucm_captions.py',
    '_base_/schedules/paper_50e.py',
    '_base_/default_runtime.py',
]
test_cfg = dict(reranker=dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9))
