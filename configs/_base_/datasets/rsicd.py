# RSICD (10,921 images of 224x224, 5 captions each), Karpathy JSON `dataset_rsicd.json`:
# train 8,734 / val 1,094 / test 1,093 images. Layout: docs/datasets.md.
_base_ = ['rs_captions.py']
data_root = 'data/rsicd'
_dataset = dict(
    type='RSCaptionDataset',
    data_root=data_root,
    ann_file='annotations/dataset_rsicd.json',
    data_prefix=dict(img_path='images'),
)
train_dataloader = dict(dataset=dict(_dataset, split='train'))
val_dataloader = dict(dataset=dict(_dataset, split='val'))
test_dataloader = dict(dataset=dict(_dataset, split='test'))
