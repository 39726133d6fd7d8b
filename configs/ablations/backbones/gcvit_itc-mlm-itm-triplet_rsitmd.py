# Table VII, "GCViT": the full CMPAGL (tested without a reranker) with the smallest standard
# GCViT (GCViT-XXT: 2-2-6-2, width 64) as image encoder.
_base_ = ['../components/gswin_itc-mlm-itm-triplet_rsitmd.py']
model = dict(backbone=dict(_base_.image_backbones.gcvit, _delete_=True))
