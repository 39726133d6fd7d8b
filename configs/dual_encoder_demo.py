# The two-tower baseline on the demo scenes: ViT-tiny and the first three layers of
# the pretrained MiniLM BERT, ITC only (the demo before CMPAGL; a reference point).
_base_ = [
    '_base_/models/dual_encoder_vit-tiny_minilm-l3.py',
    '_base_/datasets/demo_scenes.py',
    '_base_/schedules/demo_3e.py',
    '_base_/default_runtime.py',
]
