# Table III, "Gswin w/o GW": no global window (local and shifted window attention only).
_base_ = ['gswin_itc-mlm_rsicd.py']
model = dict(backbone=dict(use_global_window=False))
