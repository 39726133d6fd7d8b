# UCM-Captions on CPU with the small CMPAGL of the demo (tiny Gswin, window 4, at
# 128x128; tiny BERT split 2 + 2; all four losses), a few epochs. A smoke-scale
# run on real images, not the paper's setting.
#   python tools/train.py configs/cmpagl_ucm_cpu.py --cfg-options data_root=../shared/data/ucm_captions
_base_ = [
    '_base_/models/cmpagl_gswin-tiny_bert-tiny.py',
    '_base_/datasets/ucm_captions_128px.py',
    '_base_/schedules/demo_schedule.py',
    '_base_/default_runtime.py',
]
# Every weight starts random here: one learning rate for all.
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
