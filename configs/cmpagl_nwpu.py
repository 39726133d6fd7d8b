# CMPAGL on NWPU-Captions (not in the paper's tables): the Table II setting of
# cmpagl_rsicd.py (Gswin + 6 + 6 layer BERT stack, ITC + optimized triplet + ITM + MLM,
# 50 epochs, batch 16) on the release's train 22,050 / val 3,150 / test 6,300 images.
# Testing prints the raw ("w/o SMR") and the SMR-reranked ("with SMR") metrics.
#   python tools/train.py configs/cmpagl_nwpu.py
#   python tools/test.py configs/cmpagl_nwpu.py work_dirs/cmpagl_nwpu/best_mR_epoch_N.pth
_base_ = [
    '_base_/models/cmpagl_gswin_bert-base.py',
    '_base_/datasets/nwpu_captions.py',
    '_base_/schedules/paper_50e.py',
    '_base_/default_runtime.py',
]
test_cfg = dict(reranker=dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9))
