"""The paper's text side for the benchmarks: BERT-base split 6 + 6, randomly initialised.

Throughput and time do not depend on the weights, and nothing is downloaded:
the vocabulary is bert-base-uncased's, from the packaged MiniLM-L6 tokenizer or
a local tokenizer folder (``tokenizer``), so the benchmarks run on machines
that hold only the code.
"""

from __future__ import annotations

BERT_BASE = dict(
    hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, vocab_size=30522
)


def use_random_bert_base(model_cfg: dict, tokenizer: str | None = None) -> dict:
    """``model_cfg`` (a CMPAGL config dict) with a random BERT-base text encoder and fusion encoder."""
    text = dict(type='BertTextEncoder', config=BERT_BASE, num_layers=6, max_length=30)
    if tokenizer:
        text['tokenizer'] = tokenizer
    return dict(
        model_cfg,
        text_encoder=text,
        fusion_head=dict(type='PreAlignedFusion', config=BERT_BASE, num_layers=6),
        text_pooling='cls',
    )
