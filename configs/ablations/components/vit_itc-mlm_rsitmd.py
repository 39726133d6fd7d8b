# Table IV, "ViT (baseline)": the standard ViT-B/16 as image encoder, ITC + MLM.
_base_ = ['gswin_itc-mlm_rsitmd.py']
model = dict(backbone=dict(_base_.image_backbones.vit, _delete_=True))
