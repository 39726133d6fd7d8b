# UCM-Captions (2,100 images of 256x256, 5 captions each), Karpathy JSON protocol:
# train 1,680 / val 210 / test 210 images. The AMFMN precomp "test" files hold this
# JSON's *val* split (ucm_captions_precomp.py follows that protocol; docs/datasets.md).
_base_ = ['rs_captions.py']
data_root = 'data/ucm_captions'
_dataset = dict(
    type='RSCaptionDataset',
    data_root=data_root,
    ann_file='annotations/dataset_ucm.json',
    data_prefix=dict(img_path='images'),
)
train_dataloader = dict(dataset=dict(_dataset, split='train'))
val_dataloader = dict(dataset=dict(_dataset, split='val'))
test_dataloader = dict(dataset=dict(_dataset, split='test'))
