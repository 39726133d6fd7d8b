# RSITMD as ALBEF-style JSON lists (annotations/albef/rsitmd_{train,test}.json).
_base_ = ['rsitmd.py']
_albef = dict(ann_file='annotations/albef/rsitmd_{split}.json', ann_format='albef')
train_dataloader = dict(dataset=_albef)
val_dataloader = dict(dataset=_albef)
test_dataloader = dict(dataset=_albef)
