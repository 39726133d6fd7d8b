# The embedded demo (`make demo`): CMPAGL with all four losses on the synthetic
# aerial scenes (generated on first use), trained and tested on 2 CPU cores in under
# 10 minutes. Precision follows the hardware (`dtype='auto'`): bf16 autocast where the
# CPU or GPU runs it natively (AVX-512 BF16 / AMX; compute capability >= 8.0), fp32
# elsewhere, where PyTorch would emulate bf16 many times slower. The log says which.
_base_ = [
    '_base_/models/cmpagl_gswin-tiny_minilm-l3.py',
    '_base_/datasets/demo_scenes.py',
    '_base_/schedules/demo_3e.py',
    '_base_/default_runtime.py',
]
optim_wrapper = dict(type='AutocastOptimWrapper', dtype='auto')
val_cfg = dict(autocast='auto')
test_cfg = dict(autocast='auto')
# a progress line every 10 iterations (and at least every 30 s)
default_hooks = dict(logger=dict(interval=10))
