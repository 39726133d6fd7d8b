# Table VII, "ViT": the full CMPAGL (tested without a reranker) with the standard ViT-B/16 as image encoder.
_base_ = ['../components/gswin_itc-mlm-itm-triplet_rsitmd.py']
model = dict(backbone=dict(_base_.image_backbones.vit, _delete_=True))
