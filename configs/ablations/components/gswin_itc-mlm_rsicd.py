# Table III, "Gswin": ITC + MLM only (no ITM: the fusion encoder has no match head).
_base_ = ['gswin_itc-mlm-itm_rsicd.py']
model = dict(itm=None)
