# RSICD in the AMFMN/GaLR text format (annotations/precomp/{split}_caps.txt and
# {split}_filename.txt): train and test only (test = the Karpathy test split). AMFMN/GaLR
# validate on the test split; here model selection never reads it: 1,094 train images (the
# size of the Karpathy val split, seed 0) are held out of training and validate.
_base_ = ['rsicd.py']
holdout = dict(split='train', num_images=1094, seed=0)
_precomp = dict(ann_file='annotations/precomp', ann_format='precomp', holdout=holdout)
train_dataloader = dict(dataset=dict(_precomp, split='train'))
val_dataloader = dict(dataset=dict(_precomp, split='holdout'))
test_dataloader = dict(dataset=dict(_precomp, split='test'))
