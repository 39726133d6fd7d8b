# CMPAGL at the paper's size: Gswin (C=96, depths 1-1-3-1, window 8) and a
# 12-layer BERT-base split 6 + 6 (text encoder + fusion encoder). BERT weights load
# from a local folder in Hugging Face format (config.json, vocab.txt, weights):
# nothing is downloaded. Put bert-base-uncased there or override the path.
bert = 'data/pretrained/bert-base-uncased'
model = dict(
    type='CMPAGL',
    backbone=dict(
        type='Gswin', img_size=256, embed_dim=96, depths=(1, 1, 3, 1), num_heads=(3, 6, 12, 24), window_size=8
    ),
    text_encoder=dict(type='BertTextEncoder', pretrained=bert, num_layers=6, max_length=30),
    fusion_head=dict(type='PreAlignedFusion', pretrained=bert, num_layers=6),
    embed_dim=256,
    itc=dict(type='ITCLoss', temperature=0.07),
    triplet=dict(type='OptimizedTripletLoss', margin=0.2),
    itm=dict(type='ITMLoss'),
    mlm=dict(type='MLMLoss', mask_prob=0.15),
    queue_size=65536,
    momentum=0.995,
    distill_alpha=0.4,
    data_preprocessor=dict(type='RetrievalDataPreprocessor'),
)
