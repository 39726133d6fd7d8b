# An extra Table VII row (not in the paper): GCViT blocks in Gswin's 1-1-3-1 stage layout and
# widths, so that only the block design differs from Gswin (one global block of six).
_base_ = ['../components/gswin_itc-mlm-itm-triplet_rsitmd.py']
model = dict(backbone=dict(_base_.image_backbones.gcvit_gswin_layout, _delete_=True))
