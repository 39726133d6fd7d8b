# Sydney-Captions, AMFMN/GaLR protocol (annotations/precomp): train 497 images and a
# 58-image test set that is the Karpathy JSON's val split. The precomp release has no
# validation split (AMFMN/GaLR validate on the test set); here model selection never reads
# the test split: 58 train images (seed 0) are held out of training and validate.
_base_ = ['sydney_captions.py']
holdout = dict(split='train', num_images=58, seed=0)
_precomp = dict(ann_file='annotations/precomp', ann_format='precomp', holdout=holdout)
train_dataloader = dict(dataset=dict(_precomp, split='train'))
val_dataloader = dict(dataset=dict(_precomp, split='holdout'))
test_dataloader = dict(dataset=dict(_precomp, split='test'))
