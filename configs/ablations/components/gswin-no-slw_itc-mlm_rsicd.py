# Table III, "Gswin w/o SLW": no shifted local window branch.
_base_ = ['gswin_itc-mlm_rsicd.py']
model = dict(backbone=dict(use_shifted_window=False))
