# NWPU-Captions (31,500 images of 256x256 from NWPU-RESISC45, 45 scene classes x 700,
# 5 captions each), `dataset_nwpu.json`: an object keyed by class, images in
# NWPU_images/<class>/<filename>. The release's own split, 70/10/20 per class:
# train 22,050 / val 3,150 / test 6,300 images; the checkpoint is chosen on its val split.
# Layout: docs/datasets.md.
_base_ = ['rs_captions.py']
data_root = 'data/nwpu_captions'
_dataset = dict(
    type='RSCaptionDataset',
    data_root=data_root,
    ann_file='annotations/dataset_nwpu.json',
    ann_format='nwpu',
    data_prefix=dict(img_path='NWPU_images'),
)
train_dataloader = dict(dataset=dict(_dataset, split='train'))
val_dataloader = dict(dataset=dict(_dataset, split='val'))
test_dataloader = dict(dataset=dict(_dataset, split='test'))
