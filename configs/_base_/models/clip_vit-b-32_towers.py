# The pieces a config needs to use an open_clip ViT-B-32 (RemoteCLIP, GeoRSCLIP, OpenAI CLIP ...)
# as one or both of its encoders: the towers, the checkpoint's preprocessing (224x224 input,
# bicubic resizing, CLIP's mean/std) and the pipelines at that size. No `model` here: a
# config takes what it needs (`_base_.clip_image_backbone`, ...).
clip_arch = 'ViT-B-32'  # open_clip's name; OpenAI's weights were trained with QuickGELU: 'ViT-B-32-quickgelu'
# the checkpoint that fine-tuning starts from: RemoteCLIP's release by its zoo name (fetched
# once; `rsretrieval-weights list`), or any open_clip state dict of this architecture
# (a local path, hf-hub:ORG/NAME:FILE, e.g. 'georsclip-vit-b-32'); evaluation takes the
# checkpoint as tools/test.py's argument
clip_checkpoint = 'remoteclip-vit-b-32'
clip_image_size = 224  # open_clip's vision_cfg.image_size of ViT-B-32
# open_clip's OPENAI_DATASET_MEAN / _STD on the 0-255 scale of RetrievalDataPreprocessor
clip_mean = (122.7709383, 116.7460125, 104.09373615)  # 255 x (0.48145466, 0.4578275, 0.40821073)
clip_std = (68.5005327, 66.6321579, 70.32316305)  # 255 x (0.26862954, 0.26130258, 0.27577711)
clip_data_preprocessor = dict(type='RetrievalDataPreprocessor', mean=clip_mean, std=clip_std)
clip_train_pipeline = [
    dict(type='LoadImage'),
    dict(type='RandomResizedCrop', size=clip_image_size, scale=(0.5, 1.0), interpolation='bicubic'),
    dict(type='RandomHorizontalFlip', prob=0.5, swap_sides=True),
    dict(type='PackRetrievalInputs'),
]
# the benchmarks' images are square: resizing to 224x224 is open_clip's resize-then-centre-crop
clip_test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=(clip_image_size, clip_image_size), keep_ratio=False, interpolation='bicubic'),
    dict(type='PackRetrievalInputs'),
]
clip_image_backbone = dict(type='OpenCLIPVision', arch=clip_arch)
clip_text_encoder = dict(type='OpenCLIPText', arch=clip_arch)
