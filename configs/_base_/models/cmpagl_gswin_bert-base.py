# CMPAGL exactly as the paper builds it, from the paper's initial weights, named (they are
# fetched once through huggingface_hub's cache, verified; `rsretrieval-weights list|fetch`):
# - text: bert-base-uncased split 6 + 6 (text encoder = layers 0-5, fusion encoder =
#   layers 6-11 plus new cross-attention), text feature = [CLS] (the paper's);
# - image: Gswin (patch 4, window 8, C = 96, depths 1-1-3-1, 256x256 input) from ImageNet-1k
#   Swin-T (timm swin_tiny_patch4_window7_224: Swin block 2j -> Gswin block j's local branch,
#   2j+1 -> its shifted branch, norm and MLP; relative-position tables resized 7 -> 8; GWG
#   and cross-attention new). The paper does not name Gswin's initial weights: ImageNet Swin-T
#   is our choice (ALBEF-style practice; docs/configs.md).
# The MiniLM-L6 stack (offline, packaged) is cmpagl_gswin_minilm-l6.py.
#
# `image_backbones` holds the image encoders the ablations compare (Table III and VII), each
# from its own ImageNet weights; an ablation selects one with
# `model = dict(backbone=dict(_base_.image_backbones.vit, _delete_=True))`.
# Table VII compares the standard models: Swin-T (2-2-6-2, window 8 at 256 px) and the smallest
# standard GCViT (GCViT-XXT: 2-2-6-2, width 64); ViT is the standard ViT-B/16 (position
# embedding resized 224 -> 256). The `*_gswin_layout` variants put Swin / GCViT blocks in
# Gswin's 1-1-3-1 stages (an extra row: timm shifts only odd Swin blocks and uses global
# attention only in odd GCViT blocks, so at 1-1-3-1 one block of six is shifted / global);
# the Swin one starts from Swin-T's first blocks of each stage, the GCViT one (width 96) has
# no ImageNet weights of its width and starts at random.
text_weights = 'bert-base-uncased'  # a zoo name, hf-hub:ORG/NAME, or a local Hugging Face BERT folder
image_weights = 'swin-t-in1k'  # Gswin's (and Swin-T's) initial weights
_swin_t = dict(
    type='Swin',
    img_size=256,
    window_size=8,
    embed_dim=96,
    depths=(2, 2, 6, 2),
    num_heads=(3, 6, 12, 24),
    drop_path_rate=0.1,
    pretrained=image_weights,
)
_gcvit_xxt = dict(
    type='GCViT',
    img_size=256,
    embed_dim=64,
    depths=(2, 2, 6, 2),
    num_heads=(2, 4, 8, 16),
    drop_path_rate=0.1,
    pretrained='gcvit-xxt-in1k',
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
        pretrained=image_weights,
    ),
    vit=dict(
        type='ViT',
        img_size=256,
        patch_size=16,
        embed_dim=768,
        depth=12,
        num_heads=12,
        drop_path_rate=0.1,
        pretrained='vit-b16-in1k',
    ),
    swin=_swin_t,
    gcvit=_gcvit_xxt,
    swin_gswin_layout=dict(_swin_t, depths=(1, 1, 3, 1)),
    gcvit_gswin_layout=dict(_gcvit_xxt, embed_dim=96, depths=(1, 1, 3, 1), num_heads=(3, 6, 12, 24), pretrained=None),
)
# the components that must not start at random: the training log warns in one line otherwise
expect_pretrained = ('backbone', 'text_encoder', 'fusion_head')
model = dict(
    type='CMPAGL',
    backbone=image_backbones['gswin'],
    text_encoder=dict(type='BertTextEncoder', pretrained=text_weights, num_layers=6, max_length=30),
    fusion_head=dict(type='PreAlignedFusion', pretrained=text_weights, num_layers=6),
    embed_dim=256,
    text_pooling='cls',
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
