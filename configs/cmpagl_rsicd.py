# CMPAGL on RSICD (paper Table II): Gswin from ImageNet Swin-T + bert-base-uncased split
# 6 + 6 (weights fetched by name once; `rsretrieval-weights fetch bert-base-uncased
# swin-t-in1k` ahead of time on machines without network), ITC + optimized triplet + ITM +
# MLM, the paper's 50-epoch schedule, batch 16. cmpagl_rsicd_minilm-l6.py needs no network.
# Testing prints the raw ("w/o SMR") and the SMR-reranked ("with SMR") metrics.
#   python tools/train.py configs/cmpagl_rsicd.py
#   python tools/test.py configs/cmpagl_rsicd.py work_dirs/cmpagl_rsicd/best_mR_epoch_N.pth
_base_ = [
    '_base_/models/cmpagl_gswin_bert-base.py',
    '_base_/datasets/rsicd.py',
    '_base_/schedules/paper_50e.py',
    '_base_/default_runtime.py',
]
test_cfg = dict(reranker=dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9))
