# UCM-Captions, AMFMN/GaLR protocol (annotations/precomp): train 1,680 images and a
# 210-image test set that is the Karpathy JSON's val split; validation on that test set.
_base_ = ['ucm_captions.py']
_precomp = dict(ann_file='annotations/precomp', ann_format='precomp')
train_dataloader = dict(dataset=dict(_precomp, split='train'))
val_dataloader = dict(dataset=dict(_precomp, split='test'))
test_dataloader = dict(dataset=dict(_precomp, split='test'))
