# UCM-Captions on CPU: the demo's small two-tower model (ViT-tiny, MiniLM-L3)
# at 128x128, a few epochs. A smoke-scale baseline on real images, not a paper
# setting (those come with the CMPAGL configs).
#   python tools/train.py configs/dual_encoder_ucm_cpu.py --cfg-options data_root=/path/to/ucm_captions
_base_ = [
    '_base_/models/dual_encoder_vit-tiny_minilm-l3.py',
    '_base_/datasets/ucm_captions_128px.py',
    '_base_/schedules/demo_schedule.py',
    '_base_/default_runtime.py',
]
