# Table IV, "Gswin": ITC + MLM only (no ITM: the fusion encoder has no match head).
_base_ = ['gswin_itc-mlm-itm_rsitmd.py']
model = dict(itm=None)
