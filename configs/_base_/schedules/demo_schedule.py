# Short CPU schedule: AdamW, linear warm-up, cosine decay; the pretrained text
# encoder learns 10x slower than the randomly initialised image side.
max_epochs = 5
optim_wrapper = dict(
    type='OptimWrapper',
    # one parameter group per distinct set of options, not one per parameter (docs/performance.md)
    constructor='MergedGroupsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=3e-4, weight_decay=0.02, fused=True),  # one fused update kernel
    # bypass_duplicate: tied parameters (MLM decoder = word embeddings) belong to one group
    paramwise_cfg=dict(custom_keys={'text_encoder': dict(lr_mult=0.1)}, bypass_duplicate=True),
    clip_grad=dict(max_norm=5.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs, eta_min=1e-6),
]
train_cfg = dict(type='RetrievalTrainLoop', max_epochs=max_epochs, val_interval=1)
auto_scale_lr = dict(enable=False, base_batch_size=32)
