# The embedded demo (`make demo`): CMPAGL with all four losses on the synthetic
# aerial scenes (generated on first use), trained for 5 epochs and tested on 2 CPU
# cores in under 10 minutes. bf16 autocast (fp32 weights and losses) saves about a
# quarter of each step on CPUs with AVX-512 BF16 and works on any other.
_base_ = [
    '_base_/models/cmpagl_gswin-tiny_minilm-l3.py',
    '_base_/datasets/demo_scenes.py',
    '_base_/schedules/demo_schedule.py',
    '_base_/default_runtime.py',
]
optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16')
