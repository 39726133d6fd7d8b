# UCM-Captions, Karpathy JSON protocol: train 1,680 / val 210 / test 210 images,
# 5 captions each. (The AMFMN precomp "test" files hold the JSON's *val* split:
# see docs/datasets.md.) Point data_root at your copy:
#   --cfg-options data_root=../shared/data/ucm_captions
dataset_type = 'RSCaptionDataset'
data_root = 'data/ucm_captions'
ann_file = 'annotations/dataset_ucm.json'
image_size = 256

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='RandomResizedCrop', size=image_size, scale=(0.5, 1.0)),
    dict(type='RandomHorizontalFlip', prob=0.5, swap_sides=True),
    dict(type='PackRetrievalInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='PackRetrievalInputs'),
]
_dataset = dict(type=dataset_type, data_root=data_root, ann_file=ann_file, data_prefix=dict(img_path='images'))

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(_dataset, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(_dataset, split='val', test_mode=True, pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(_dataset, split='test', test_mode=True, pipeline=test_pipeline),
)
val_evaluator = dict(type='RetrievalRecall')
test_evaluator = val_evaluator
val_cfg = dict(type='RetrievalValLoop')
test_cfg = dict(type='RetrievalTestLoop')
