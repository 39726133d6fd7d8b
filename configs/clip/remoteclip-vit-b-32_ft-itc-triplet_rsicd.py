# Fine-tuning a local CLIP-family ViT-B-32 checkpoint on RSICD with CMPAGL's pre-alignment
# losses: ITC with momentum encoders and a 65,536-entry feature queue, plus the optimized
# triplet loss (Eq. 18-19, as configs/cmpagl_rsicd.py sets them), on CLIP's own towers and
# projections (no fusion encoder). Otherwise as remoteclip-vit-b-32_ft-itc_rsicd.py.
#   python tools/train.py configs/clip/remoteclip-vit-b-32_ft-itc-triplet_rsicd.py --cfg-options model.pretrained=CKPT
_base_ = ['remoteclip-vit-b-32_ft-itc_rsicd.py']
model = dict(
    triplet=dict(type='OptimizedTripletLoss', margin=0.2, reduction='sum'),
    queue_size=65536,
    momentum=0.995,
    distill_alpha=0.0,
)
