# The embedded demo: synthetic aerial scenes (generated on first use), trained
# and evaluated on 2 CPU cores in minutes. `make demo` runs it end to end.
_base_ = [
    '_base_/models/dual_encoder_vit-tiny_minilm-l3.py',
    '_base_/datasets/demo_scenes.py',
    '_base_/schedules/demo_schedule.py',
    '_base_/default_runtime.py',
]
