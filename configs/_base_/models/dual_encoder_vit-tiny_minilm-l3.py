# Two-tower baseline: a small timm ViT and the first 3 layers of the MiniLM BERT
# (offline pretrained weights).
model = dict(
    type='DualEncoderRetriever',
    backbone=dict(type='ViT', img_size=128, patch_size=16, embed_dim=192, depth=4, num_heads=3, drop_path_rate=0.0),
    text_encoder=dict(
        type='BertTextEncoder', pretrained='minilm-l6', num_layers=3, max_length=30, freeze_embeddings=True
    ),
    embed_dim=256,
    text_pooling='mean',  # MiniLM was pretrained for mean pooling; its early [CLS] is constant
    loss=dict(type='ITCLoss', temperature=0.07),
    data_preprocessor=dict(type='RetrievalDataPreprocessor'),
)
