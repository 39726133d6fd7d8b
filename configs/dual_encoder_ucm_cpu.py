# UCM-Captions on CPU: the demo's small two-tower model (ViT-tiny, MiniLM-L3)
# at 128x128, a few epochs. A smoke-scale baseline on real images, not a paper
# setting (those come with the CMPAGL configs).
#   python tools/train.py configs/dual_encoder_ucm_cpu.py --cfg-options data_root=../shared/data/ucm_captions
_base_ = [
    '_base_/models/dual_encoder_vit-tiny_minilm-l3.py',
    '_base_/datasets/ucm_captions.py',
    '_base_/schedules/demo_schedule.py',
    '_base_/default_runtime.py',
]
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
train_dataloader = dict(batch_size=32, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
