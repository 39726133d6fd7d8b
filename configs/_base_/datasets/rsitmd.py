# RSITMD (4,743 images of 256x256, 5 captions each), Karpathy JSON `dataset_RSITMD.json`:
# train 4,291 / test 452 images. The release has no validation split, and model selection
# never reads the test split here: a fixed validation set of 300 train images (7 %, drawn
# with seed 0 from the train file names; the same images in every annotation format) is
# held out of training and selects the checkpoint. Published RSITMD results usually validate
# on the test split: that protocol is `rsitmd_val-on-test.py`, labelled as such.
# The release also has captions that are empty after cleaning (20 in the precomp
# train file): they are dropped, and the log says how many and where.
_base_ = ['rs_captions.py']
data_root = 'data/rsitmd'
holdout = dict(split='train', num_images=300, seed=0)
_dataset = dict(
    type='RSCaptionDataset',
    data_root=data_root,
    ann_file='annotations/dataset_RSITMD.json',
    data_prefix=dict(img_path='images'),
    empty_captions='drop',
    holdout=holdout,
)
train_dataloader = dict(dataset=dict(_dataset, split='train'))
val_dataloader = dict(dataset=dict(_dataset, split='holdout'))
test_dataloader = dict(dataset=dict(_dataset, split='test'))
