# Table III, "Gswin + ITM": without the optimized triplet loss (ITC + ITM + MLM).
_base_ = ['gswin_itc-mlm-itm-triplet_rsicd.py']
model = dict(triplet=None)
