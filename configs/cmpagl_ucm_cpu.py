# UCM-Captions on CPU with the demo's small CMPAGL (3-stage Gswin at 128x128, MiniLM
# split 2 + 1, all four losses), the same 5-epoch schedule as the two-tower
# baseline `dual_encoder_ucm_cpu.py`. A smoke-scale run on real images, not the
# paper's setting.
#   python tools/train.py configs/cmpagl_ucm_cpu.py --cfg-options data_root=/path/to/ucm_captions
_base_ = [
    '_base_/models/cmpagl_gswin-tiny_minilm-l3.py',
    '_base_/datasets/ucm_captions_128px.py',
    '_base_/schedules/demo_schedule.py',
    '_base_/default_runtime.py',
]
optim_wrapper = dict(type='AutocastOptimWrapper', dtype='auto')  # bf16 only where native
