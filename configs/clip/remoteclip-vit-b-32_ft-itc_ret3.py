# RemoteCLIP's ViT-B-32 fine-tuned on RET-3 (RSICD + RSITMD + UCM-Captions training splits, the
# images a leakage check found close to a held-out image left out; _base_/datasets/ret3_combined.py)
# with in-batch ITC at CLIP's own temperature and the paper's schedule (AdamW 1e-5, 50 epochs,
# batch 16: our choice, as remoteclip-vit-b-32_ft-itc_rsicd.py; RemoteCLIP's own fine-tuning
# settings are not taken from its paper here). The checkpoint is selected by the mean of the
# three validation parts' mR; tools/test.py reports each test split (rsicd/..., rsitmd/..., ucm/...).
#   1. the exclusion list (once per copy of the data):
#      python tools/analysis_tools/check_leaks.py --config rsicd=configs/cmpagl_rsicd.py \
#          --config rsitmd=configs/cmpagl_rsitmd.py --config ucm=configs/cmpagl_ucm.py \
#          --out work_dirs/leaks/ret3
#   2. python tools/train.py configs/clip/remoteclip-vit-b-32_ft-itc_ret3.py
#   3. python tools/test.py configs/clip/remoteclip-vit-b-32_ft-itc_ret3.py \
#          work_dirs/remoteclip-vit-b-32_ft-itc_ret3/best_mR_epoch_N.pth
# The datasets are read from data/rsicd, data/rsitmd and data/ucm_captions (docs/datasets.md).
_base_ = [
    '../_base_/models/clip_vit-b-32.py',
    '../_base_/datasets/ret3_combined.py',
    '../_base_/schedules/paper_50e.py',
    '../_base_/default_runtime.py',
]
model = dict(pretrained='remoteclip-vit-b-32')
train_dataloader = dict(dataset=dict(pipeline=_base_.clip_train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=_base_.clip_test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=_base_.clip_test_pipeline))
test_cfg = dict(reranker=dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9))
