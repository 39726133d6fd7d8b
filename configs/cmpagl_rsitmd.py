# CMPAGL on RSITMD (paper Table II); as cmpagl_rsicd.py. RSITMD has no validation split:
# 300 train images, fixed by a seed, are held out of training and select the checkpoint
# (see _base_/datasets/rsitmd.py); cmpagl_rsitmd_val-on-test.py is the published practice.
_base_ = [
    '_base_/models/cmpagl_gswin_bert-base.py',
    '_base_/datasets/rsitmd.py',
    '_base_/schedules/paper_50e.py',
    '_base_/default_runtime.py',
]
test_cfg = dict(reranker=dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9))
