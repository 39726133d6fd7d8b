# The embedded demo: CMPAGL (small Gswin + small BERT, all four losses) on the
# synthetic aerial scenes (generated on first use), trained and evaluated on 2 CPU
# cores in minutes. `make demo` runs it end to end.
_base_ = [
    '_base_/models/cmpagl_gswin-tiny_bert-tiny.py',
    '_base_/datasets/demo_scenes.py',
    '_base_/schedules/demo_schedule.py',
    '_base_/default_runtime.py',
]
# Every weight starts random here: one learning rate for all.
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
