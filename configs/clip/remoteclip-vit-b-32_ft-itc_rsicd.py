# CLIP's usual fine-tuning on RSICD: a local CLIP-family ViT-B-32 checkpoint (RemoteCLIP's by
# default, `model.pretrained`) trained with in-batch ITC at CLIP's own temperature (its logit
# scale, trained with it), the paper's schedule (AdamW 1e-5, 50 epochs, batch 16); tested raw
# and with SMR. The checkpoints saved are open_clip state dicts (plus mmengine's meta).
#   python tools/train.py configs/clip/remoteclip-vit-b-32_ft-itc_rsicd.py --cfg-options model.pretrained=CKPT
#   python tools/test.py configs/clip/remoteclip-vit-b-32_ft-itc_rsicd.py work_dirs/.../best_mR_epoch_N.pth
_base_ = ['remoteclip-vit-b-32_zeroshot_rsicd.py']
model = dict(pretrained=_base_.clip_checkpoint)
