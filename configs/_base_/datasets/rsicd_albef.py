# RSICD as ALBEF-style JSON lists, one file per split (annotations/albef/rsicd_{split}.json).
_base_ = ['rsicd.py']
_albef = dict(ann_file='annotations/albef/rsicd_{split}.json', ann_format='albef')
train_dataloader = dict(dataset=_albef)
val_dataloader = dict(dataset=_albef)
test_dataloader = dict(dataset=_albef)
