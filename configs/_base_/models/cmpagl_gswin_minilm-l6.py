# The paper's CMPAGL (cmpagl_gswin_bert-base.py) with nothing to download: the text and
# fusion stack from the packaged MiniLM-L6 (6 layers of width 384, bert-base-uncased
# vocabulary) split 6 + 6 (the fusion encoder starts from the same 6 pretrained layers plus
# new cross-attention), and Gswin at random initialisation. An offline variant for machines
# without network, not the paper's model: a transformer image encoder trained from random
# weights cannot reach the paper's numbers in its 50 epochs.
_base_ = ['cmpagl_gswin_bert-base.py']
text_weights = 'minilm-l6'
image_weights = None
expect_pretrained = ('text_encoder', 'fusion_head')
model = dict(
    backbone=dict(pretrained=image_weights),
    text_encoder=dict(pretrained=text_weights),
    fusion_head=dict(pretrained=text_weights),
    # MiniLM was pretrained for mean pooling: its [CLS] starts out near constant
    # (mean cosine 0.53 between unrelated captions, against 0.18 for the mean token)
    text_pooling='mean',
)
