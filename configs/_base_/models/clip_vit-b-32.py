# CLIPRetriever on an open_clip ViT-B-32: CLIP's two towers, projections and logit scale,
# scored by the cosine of CLIP's embeddings (open_clip's similarities exactly). The default
# loss is CLIP's in-batch ITC with CLIP's temperature (1 / exp(logit_scale), loaded with the
# weights). `pretrained=None`: an evaluation loads the checkpoint given to tools/test.py;
# fine-tuning configs set `model.pretrained`.
_base_ = ['clip_vit-b-32_towers.py']
model = dict(
    type='CLIPRetriever',
    backbone=_base_.clip_image_backbone,
    text_encoder=_base_.clip_text_encoder,
    pretrained=None,
    itc=dict(type='ITCLoss', temperature=0.07, temp_range=(0.01, 0.5)),
    data_preprocessor=_base_.clip_data_preprocessor,
)
