# The embedded demo (`make demo`): CMPAGL with all four losses on the synthetic
# aerial scenes (generated on first use), trained and tested on 2 CPU cores in
# under 10 minutes. bf16 autocast (fp32 weights and losses) saves about a quarter
# of each step on CPUs with AVX-512 BF16 and works on any other.
_base_ = [
    '_base_/models/cmpagl_gswin-tiny_minilm-l3.py',
    '_base_/datasets/demo_scenes.py',
    '_base_/schedules/demo_schedule.py',
    '_base_/default_runtime.py',
]
max_epochs = 4
optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs, eta_min=1e-6),
]
train_cfg = dict(max_epochs=max_epochs)
