"""BERT text encoder (HF ``transformers``) with its WordPiece tokenizer."""

from __future__ import annotations

import os

import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch import nn
from transformers import BertConfig, BertModel, BertTokenizerFast
from transformers.utils import logging as hf_logging

from rsretrieval.registry import TEXT_ENCODERS
from rsretrieval.weights.pretrained import resolve_pretrained

from .token_cache import TokenCache, pad_token_rows


def load_bert(pretrained: str | os.PathLike) -> BertModel:
    """A pretrained ``BertModel`` (no pooler, SDPA attention) from a local folder or
    packaged name, without transformers' load report and progress bar."""
    path = resolve_pretrained(pretrained)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return BertModel.from_pretrained(path, add_pooling_layer=False, attn_implementation='sdpa')
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


#: Tokenizer used when neither ``tokenizer`` nor ``pretrained`` is given:
#: bert-base-uncased's 30,522-token vocabulary, shipped offline.
DEFAULT_TOKENIZER = 'minilm-l6'


@TEXT_ENCODERS.register_module()
class BertTextEncoder(BaseModule):
    """The text half of BERT: embeddings and the first ``num_layers`` layers.

    Output: ``(B, L, D)`` token features, ``[CLS]`` first; ``out_channels = D``.

    Args:
        pretrained: Local folder in HF format (``config.json`` + weights), or a
            packaged name such as ``'minilm-l6'``. ``None`` builds ``config``
            with random weights.
        config: ``BertConfig`` keyword arguments for random initialisation
            (ignored when ``pretrained`` is given).
        num_layers: Keep only the first ``num_layers`` layers (``None``: all).
        tokenizer: Tokenizer folder or packaged name; defaults to
            ``pretrained``, else the bert-base-uncased vocabulary of
            ``'minilm-l6'``.
        max_length: Tokens per caption, ``[CLS]`` and ``[SEP]`` included.
        freeze_embeddings: Keep the token/position embeddings fixed (saves the
            update of the 30k x D word table; useful on CPU and small data).
        token_cache_size: Captions whose token ids are kept after their first
            tokenisation (training sees every caption once per epoch; RSICD
            has 54,605). The cache is emptied when full; 0 turns it off.
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        pretrained: str | os.PathLike | None = None,
        config: dict | None = None,
        num_layers: int | None = None,
        tokenizer: str | os.PathLike | None = None,
        max_length: int = 30,
        freeze_embeddings: bool = False,
        token_cache_size: int = 200_000,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.pretrained = pretrained  # where the initial weights come from (the training log's table)
        if pretrained is not None:
            self.bert = load_bert(pretrained)
            MMLogger.get_current_instance().info(f'BertTextEncoder: pretrained weights from {pretrained}')
        else:
            self.bert = BertModel(
                BertConfig(**{'attn_implementation': 'sdpa', **(config or {})}), add_pooling_layer=False
            )
        total = len(self.bert.encoder.layer)
        if num_layers is not None:
            if not 0 < num_layers <= total:
                raise ValueError(f'num_layers must be in [1, {total}], got {num_layers}')
            self.bert.encoder.layer = nn.ModuleList(self.bert.encoder.layer[:num_layers])
            self.bert.config.num_hidden_layers = num_layers
        # The HF module is initialised already: keep mmengine's init_weights off it.
        self.bert.is_init = True
        tok_path = resolve_pretrained(tokenizer or pretrained or DEFAULT_TOKENIZER)
        self.tokenizer = BertTokenizerFast.from_pretrained(tok_path)
        if self.tokenizer.vocab_size > self.bert.config.vocab_size:
            raise ValueError(
                f'tokenizer {tok_path} has {self.tokenizer.vocab_size} tokens but the model '
                f'vocabulary has {self.bert.config.vocab_size}'
            )
        self.max_length = max_length
        self.token_cache_size = token_cache_size
        self._token_cache = TokenCache(token_cache_size)
        if freeze_embeddings:
            self.bert.embeddings.requires_grad_(False)

    @property
    def out_channels(self) -> int:
        """Width of the output tokens."""
        return self.bert.config.hidden_size

    def token_ids(self, captions: list[str]) -> list[tuple[int, ...]]:
        """Token ids of each caption, ``[CLS]`` ... ``[SEP]``, truncated to ``max_length``;
        captions seen before come from the cache, the others are tokenised in one call."""
        return self._token_cache.token_ids(
            captions, lambda new: self.tokenizer(new, truncation=True, max_length=self.max_length)['input_ids']
        )

    def tokenize(
        self, captions: list[str], device: torch.device | str = 'cpu', pad_to_max_length: bool = False
    ) -> dict[str, torch.Tensor]:
        """Tokenise a batch, padded to its longest caption (or to ``max_length``).

        The same ids and mask as the tokenizer's own batch call (tested); the
        copy to a GPU ``device`` does not wait for the device.

        Returns:
            ``input_ids`` and ``attention_mask``, ``(B, L)`` int64 on ``device``.
        """
        rows = self.token_ids(list(captions))
        length = self.max_length if pad_to_max_length else max((len(r) for r in rows), default=0)
        return pad_token_rows(rows, length, self.tokenizer.pad_token_id, device)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # input_ids, attention_mask: (B, L) -> (B, L, D)
        # The (B, 1, 1, L) boolean mask goes to SDPA as it is: given the 2-D mask,
        # transformers first asks the device whether any token is padding (a host
        # synchronisation in every call) to drop the mask when there is none.
        keys = attention_mask[:, None, None, :].bool()
        return self.bert(input_ids=input_ids, attention_mask=keys).last_hidden_state
