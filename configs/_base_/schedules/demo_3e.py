# The embedded demo's schedule: demo_schedule.py in 3 epochs, so that `make demo` (data,
# training with validation, test) takes under 10 minutes on a 2-core AVX2 CPU in fp32.
_base_ = ['demo_schedule.py']
max_epochs = 3
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs, eta_min=1e-6),
]
