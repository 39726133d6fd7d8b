# Zero-shot evaluation of a local CLIP-family ViT-B-32 checkpoint (RemoteCLIP's
# RemoteCLIP-ViT-B-32.pt, or any open_clip state dict of this architecture) on the
# RSITMD test split, raw and with SMR. The checkpoint is tools/test.py's argument; the
# architecture and the preprocessing (224 px, bicubic, CLIP's mean/std) are this config's:
#   python tools/test.py configs/clip/remoteclip-vit-b-32_zeroshot_rsitmd.py CKPT --rerank smr
# The schedule only completes the config (fine-tuning: remoteclip-vit-b-32_ft-itc_rsicd.py).
_base_ = [
    '../_base_/models/clip_vit-b-32.py',
    '../_base_/datasets/rsitmd.py',
    '../_base_/schedules/paper_50e.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(dataset=dict(pipeline=_base_.clip_train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=_base_.clip_test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=_base_.clip_test_pipeline))
test_cfg = dict(reranker=dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9))
