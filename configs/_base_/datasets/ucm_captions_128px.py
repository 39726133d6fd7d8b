# UCM-Captions at 128x128 for CPU-sized runs (2 loader workers, batch 32); otherwise
# as ucm_captions.py.
_base_ = ['ucm_captions.py']
image_size = 128
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
_cpu = dict(num_workers=2, pin_memory=False)
train_dataloader = dict(_cpu, batch_size=32, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(_cpu, dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(_cpu, dataset=dict(pipeline=test_pipeline))
