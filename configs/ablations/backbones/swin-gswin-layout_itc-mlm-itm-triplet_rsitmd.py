# An extra Table VII row (not in the paper): Swin blocks in Gswin's 1-1-3-1 stage layout, so
# that only the block design differs from Gswin (one shifted block of six).
_base_ = ['../components/gswin_itc-mlm-itm-triplet_rsitmd.py']
model = dict(backbone=dict(_base_.image_backbones.swin_gswin_layout, _delete_=True))
