# Table VII-style row: the full CMPAGL of ablations/components/gswin_itc-mlm-itm-triplet_rsitmd.py
# (ITC + O-Tri + ITM + MLM, the MiniLM BERT text and fusion encoders, tested without a reranker)
# with a CLIP-family ViT-B-32 image tower (RemoteCLIP's weights by default) in place of Gswin.
# Its tokens are CLIP's: the image embedding first, then the 49 projected patch tokens (width
# 512), which the fusion encoder cross-attends. What changes besides the backbone is what the
# checkpoint dictates: 224 px input (bicubic) and CLIP's mean/std.
#   python tools/train.py configs/clip/cmpagl_remoteclip-vit-b-32-image_rsitmd.py \
#       --cfg-options model.backbone.pretrained=CKPT
_base_ = ['../ablations/components/gswin_itc-mlm-itm-triplet_rsitmd.py', '../_base_/models/clip_vit-b-32_towers.py']
model = dict(
    backbone=dict(_base_.clip_image_backbone, pretrained=_base_.clip_checkpoint, _delete_=True),
    data_preprocessor=_base_.clip_data_preprocessor,
)
train_dataloader = dict(dataset=dict(pipeline=_base_.clip_train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=_base_.clip_test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=_base_.clip_test_pipeline))
