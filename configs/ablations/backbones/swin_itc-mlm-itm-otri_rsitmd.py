# Table VII, "Swin": the full CMPAGL (tested without a reranker) with Swin (Gswin's stage layout) as image encoder.
_base_ = ['../components/gswin_itc-mlm-itm-otri_rsitmd.py']
model = dict(backbone=dict(_base_.image_backbones.swin, _delete_=True))
