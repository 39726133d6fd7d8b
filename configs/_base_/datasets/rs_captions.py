# What every caption dataset shares: the paper's augmentation (random crop of 50-100 %
# of the image, horizontal flip, resize to 256x256), batch 16, the retrieval loops and
# metric. Flips swap "left" and "right" in the caption so that it stays true. A dataset
# file (rsicd.py, rsitmd.py, ucm_captions.py, sydney_captions.py) adds `data_root` and
# each loader's `dataset=dict(type=..., ann_file=..., split=...)`.
image_size = 256

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='RandomResizedCrop', size=image_size, scale=(0.5, 1.0)),
    dict(type='RandomHorizontalFlip', prob=0.5, swap_sides=True),  # 'left' <-> 'right' in the caption
    dict(type='PackRetrievalInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='PackRetrievalInputs'),
]

train_dataloader = dict(
    batch_size=16,  # per process
    num_workers=4,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='ReproducibleSampler', shuffle=True),  # per-sample augmentation seeds
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(test_mode=True, pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=False,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(test_mode=True, pipeline=test_pipeline),
)
val_evaluator = dict(type='RetrievalRecall')
test_evaluator = val_evaluator
val_cfg = dict(type='RetrievalValLoop')
test_cfg = dict(type='RetrievalTestLoop')
