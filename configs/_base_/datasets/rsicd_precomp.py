# RSICD in the AMFMN/GaLR text format (annotations/precomp/{split}_caps.txt and
# {split}_filename.txt): train and test only (test = the Karpathy test split), so
# validation runs on the test split, as the AMFMN/GaLR code does.
_base_ = ['rsicd.py']
_precomp = dict(ann_file='annotations/precomp', ann_format='precomp')
train_dataloader = dict(dataset=dict(_precomp, split='train'))
val_dataloader = dict(dataset=dict(_precomp, split='test'))
test_dataloader = dict(dataset=dict(_precomp, split='test'))
