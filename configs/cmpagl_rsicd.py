# CMPAGL on RSICD (paper Table II): Gswin + 6 + 6 layer BERT stack (offline MiniLM-L6
# weights), ITC + optimized triplet + ITM + MLM, the paper's 50-epoch schedule, batch 16.
# Testing prints the raw ("w/o SMR") and the SMR-reranked ("with SMR") metrics.
#   python tools/train.py configs/cmpagl_rsicd.py
#   python tools/test.py configs/cmpagl_rsicd.py work_dirs/cmpagl_rsicd/best_mR_epoch_N.pth
_base_ = [
    '_base_/models/cmpagl_gswin_minilm-l6.py',
    '_base_/datasets/rsicd.py',
    '_base_/schedules/paper_50e.py',
    '_base_/default_runtime.py',
]
test_cfg = dict(reranker=dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9))
