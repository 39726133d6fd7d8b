# RSITMD in the AMFMN/GaLR text format (annotations/precomp): the same train/test split.
_base_ = ['rsitmd.py']
_precomp = dict(ann_file='annotations/precomp', ann_format='precomp')
train_dataloader = dict(dataset=_precomp)
val_dataloader = dict(dataset=_precomp)
test_dataloader = dict(dataset=_precomp)
