# Sydney-Captions (613 images of 500x500, resized to 256, 5 captions each), Karpathy JSON
# protocol: train 497 / val 58 / test 58 images. The AMFMN precomp "test" files hold
# this JSON's *val* split (sydney_captions_precomp.py; docs/datasets.md).
_base_ = ['rs_captions.py']
data_root = 'data/sydney_captions'
_dataset = dict(
    type='RSCaptionDataset',
    data_root=data_root,
    ann_file='annotations/dataset_sydney.json',
    data_prefix=dict(img_path='images'),
)
train_dataloader = dict(dataset=dict(_dataset, split='train'))
val_dataloader = dict(dataset=dict(_dataset, split='val'))
test_dataloader = dict(dataset=dict(_dataset, split='test'))
