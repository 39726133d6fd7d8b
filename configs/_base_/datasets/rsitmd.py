# RSITMD (4,743 images of 256x256, 5 captions each), Karpathy JSON `dataset_RSITMD.json`:
# train 4,291 / test 452 images. The release has no validation split: validation runs
# on the test split, as every published RSITMD result does (model selection on test).
# The release also has captions that are empty after cleaning (20 in the precomp
# train file): they are dropped, and the log says how many and where.
_base_ = ['rs_captions.py']
data_root = 'data/rsitmd'
_dataset = dict(
    type='RSCaptionDataset',
    data_root=data_root,
    ann_file='annotations/dataset_RSITMD.json',
    data_prefix=dict(img_path='images'),
    empty_captions='drop',
)
train_dataloader = dict(dataset=dict(_dataset, split='train'))
val_dataloader = dict(dataset=dict(_dataset, split='test'))
test_dataloader = dict(dataset=dict(_dataset, split='test'))
