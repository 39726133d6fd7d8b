# CMPAGL at demo size: a 4-stage Gswin with window 4 at 128x128 (stage maps
# 32/16/8/4) and a small randomly initialised BERT split 2 + 2 (text + fusion),
# with bert-base-uncased's vocabulary. Trains on 2 CPU cores in minutes.
bert_tiny = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=512)
model = dict(
    type='CMPAGL',
    backbone=dict(
        type='Gswin',
        img_size=128,
        embed_dim=32,
        depths=(1, 1, 1, 1),
        num_heads=(1, 2, 4, 8),
        window_size=4,
        drop_path_rate=0.0,
    ),
    text_encoder=dict(type='BertTextEncoder', config=bert_tiny, max_length=30),
    fusion_head=dict(type='PreAlignedFusion', config=bert_tiny, num_layers=2),
    embed_dim=128,
    itc=dict(type='ITCLoss', temperature=0.07),
    triplet=dict(type='OptimizedTripletLoss', margin=0.2),
    itm=dict(type='ITMLoss'),
    mlm=dict(type='MLMLoss', mask_prob=0.15),
    queue_size=1024,
    momentum=0.995,
    distill_alpha=0.4,
    data_preprocessor=dict(type='RetrievalDataPreprocessor'),
)
