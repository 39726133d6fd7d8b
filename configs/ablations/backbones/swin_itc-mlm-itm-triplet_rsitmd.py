# Table VII, "Swin": the full CMPAGL (tested without a reranker) with the standard Swin-T
# (2-2-6-2, window 8 at 256 px) as image encoder.
_base_ = ['../components/gswin_itc-mlm-itm-triplet_rsitmd.py']
model = dict(backbone=dict(_base_.image_backbones.swin, _delete_=True))
