# CMPAGL exactly at the paper's size: Gswin and a 12-layer BERT-base split 6 + 6 (text
# encoder = layers 0-5, fusion encoder = layers 6-11 plus new cross-attention), text
# feature = [CLS]. The BERT weights load from a local Hugging Face folder (config.json,
# vocab.txt, model weights); nothing is downloaded: put bert-base-uncased there or
# point both at your copy with `--cfg-options text_weights=PATH`.
_base_ = ['cmpagl_gswin_minilm-l6.py']
text_weights = 'data/pretrained/bert-base-uncased'
model = dict(
    text_encoder=dict(pretrained=text_weights),
    fusion_head=dict(pretrained=text_weights),
    text_pooling='cls',
)
