# CMPAGL with the paper's structure and offline pretrained text weights: Gswin (patch 4,
# window 8, C = 96, depths 1-1-3-1, 256x256 input) and a 6 + 6 layer BERT stack from the
# MiniLM-L6 package (width 384, bert-base-uncased vocabulary): the text encoder is its 6
# layers, the fusion encoder 6 more initialised from the same pretrained layers plus new
# cross-attention (docs/models.md). cmpagl_gswin_bert-base.py is the same with BERT-base.
#
# `image_backbones` holds the image encoders the ablations compare (Table III and VII);
# an ablation selects one with `model = dict(backbone=dict(_base_.image_backbones.vit, _delete_=True))`.
# Table VII compares the standard models: Swin-T (2-2-6-2, window 8 at 256 px) and the smallest
# standard GCViT (GCViT-XXT: 2-2-6-2, width 64); ViT is the standard ViT-B/16. The
# `*_gswin_layout` variants put Swin / GCViT blocks in Gswin's 1-1-3-1 stages (an extra row:
# timm shifts only odd Swin blocks and uses global attention only in odd GCViT blocks, so at
# 1-1-3-1 one block of six is shifted / global).
_swin_t = dict(
    type='Swin',
    img_size=256,
    window_size=8,
    embed_dim=96,
    depths=(2, 2, 6, 2),
    num_heads=(3, 6, 12, 24),
    drop_path_rate=0.1,
)
_gcvit_xxt = dict(
    type='GCViT', img_size=256, embed_dim=64, depths=(2, 2, 6, 2), num_heads=(2, 4, 8, 16), drop_path_rate=0.1
)
image_backbones = dict(
    gswin=dict(
        type='Gswin',
        img_size=256,
        patch_size=4,
        embed_dim=96,
        depths=(1, 1, 3, 1),
        num_heads=(3, 6, 12, 24),
        window_size=8,
        drop_path_rate=0.1,
    ),
    vit=dict(type='ViT', img_size=256, patch_size=16, embed_dim=768, depth=12, num_heads=12, drop_path_rate=0.1),
    swin=_swin_t,
    gcvit=_gcvit_xxt,
    swin_gswin_layout=dict(_swin_t, depths=(1, 1, 3, 1)),
    gcvit_gswin_layout=dict(_gcvit_xxt, embed_dim=96, depths=(1, 1, 3, 1), num_heads=(3, 6, 12, 24)),
)
text_weights = 'minilm-l6'  # a packaged name or a local Hugging Face BERT folder
model = dict(
    type='CMPAGL',
    backbone=image_backbones['gswin'],
    text_encoder=dict(type='BertTextEncoder', pretrained=text_weights, num_layers=6, max_length=30),
    fusion_head=dict(type='PreAlignedFusion', pretrained=text_weights, num_layers=6),
    embed_dim=256,
    # MiniLM was pretrained for mean pooling: its [CLS] starts out near constant
    # (mean cosine 0.53 between unrelated captions, against 0.18 for the mean token)
    text_pooling='mean',
    # Eq. 18 and Eq. 19 as written: ITC without momentum distillation, the triplet loss summed
    # over the batch (docs/configs.md)
    itc=dict(type='ITCLoss', temperature=0.07),
    triplet=dict(type='OptimizedTripletLoss', margin=0.2, reduction='sum'),
    itm=dict(type='ITMLoss'),
    mlm=dict(type='MLMLoss', mask_prob=0.15),
    queue_size=65536,
    momentum=0.995,
    distill_alpha=0.0,
    data_preprocessor=dict(type='RetrievalDataPreprocessor'),
)
