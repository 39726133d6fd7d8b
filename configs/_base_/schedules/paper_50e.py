# The paper's schedule: AdamW, learning rate 1e-5 decaying to 1e-6 by epoch 30 (cosine,
# updated every iteration; the paper does not name the curve), then 1e-6 until epoch 50.
# Batch 16 per process is set by the dataset configs.
max_epochs = 50
optim_wrapper = dict(
    type='OptimWrapper',
    # one parameter group per distinct set of options, not one per parameter (docs/performance.md)
    constructor='MergedGroupsOptimWrapperConstructor',
    # fused: one kernel for the whole update (CPU and GPU; 3x faster than foreach on the CPU
    # at paper size, docs/benchmarks.md)
    optimizer=dict(type='AdamW', lr=1e-5, weight_decay=0.02, fused=True),
    # tied parameters (MLM decoder = word embeddings) must be counted once
    paramwise_cfg=dict(bypass_duplicate=True),
)
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=30, T_max=30, eta_min=1e-6, convert_to_iter_based=True),
]
# losses are read back to the host every 10 steps (a GPU never waits between steps; a NaN is
# still caught before any checkpoint, docs/performance.md); 10 divides the logger's interval
train_cfg = dict(type='RetrievalTrainLoop', max_epochs=max_epochs, val_interval=1, loss_sync_interval=10)
# The paper's batch is 16; with --cfg-options auto_scale_lr.enable=True the rate follows
# the total batch (processes x batch_size) linearly.
auto_scale_lr = dict(enable=False, base_batch_size=16)
