"""What every BERT-based fusion head shares: configuration, image projection, MLM head."""

from __future__ import annotations

import os
from abc import ABCMeta, abstractmethod

import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch import nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertOnlyMLMHead

from rsretrieval.weights.pretrained import read_pretrained_tensors, resolve_pretrained


class BertFusionHead(BaseModule, metaclass=ABCMeta):
    """Base of the fusion heads.

    Resolves the BERT configuration (from ``pretrained`` or ``config``), projects
    image tokens to the text width (``image_proj``) and holds the MLM head whose
    decoder can share the word embeddings. Subclasses build their fusion layers
    and their match head (when ``with_match_head``) and implement ``itm_logits``
    and ``mlm_logits``.

    A head is built only when something uses it: a model trained without MLM
    (or without ITM) passes ``with_mlm_head=False`` (``with_match_head=False``)
    so that no parameter goes without a gradient (which distributed training
    would reject) and no untrained head can be used by mistake.

    Args:
        image_width: Width of the image tokens (the model passes the
            backbone's ``out_channels``).
        pretrained: Local BERT folder or packaged name (configuration and
            initial fusion weights). When it holds an MLM head
            (``cls.predictions.*``, as bert-base-uncased does), the MLM head
            starts from it; otherwise (sentence-transformers exports such as
            MiniLM) it starts random, and the log says so.
        config: ``BertConfig`` arguments when ``pretrained`` is None.
        with_match_head: Build the image-text match (ITM) head.
        with_mlm_head: Build the masked-language-modelling head.
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        image_width: int,
        pretrained: str | os.PathLike | None = None,
        config: dict | None = None,
        with_match_head: bool = True,
        with_mlm_head: bool = True,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.pretrained = pretrained  # where the initial weights come from (the training log's table)
        self.bert_config = (
            BertConfig.from_pretrained(resolve_pretrained(pretrained)) if pretrained else BertConfig(**(config or {}))
        )
        width = self.bert_config.hidden_size
        self.image_proj = nn.Linear(image_width, width) if image_width != width else nn.Identity()
        self.with_match_head = with_match_head
        self.mlm_head = BertOnlyMLMHead(self.bert_config) if with_mlm_head else None
        if self.mlm_head is not None:
            # HF ties the decoder bias to ``predictions.bias`` only inside a PreTrainedModel;
            # standalone, ``predictions.bias`` would be a parameter that never gets a gradient
            self.mlm_head.predictions.decoder.bias = self.mlm_head.predictions.bias
            if pretrained:
                self._load_mlm_head(pretrained)

    def _load_mlm_head(self, pretrained: str | os.PathLike) -> bool:
        """Initialise the MLM head's transform and output bias from the pretrained
        checkpoint's ``cls.predictions``; the decoder weight is tied to the word
        embeddings by the model. Returns whether the checkpoint had a head."""
        logger = MMLogger.get_current_instance()
        state = read_pretrained_tensors(resolve_pretrained(pretrained), 'cls.predictions.')
        state = {
            'predictions.'
            + k.replace('LayerNorm.gamma', 'LayerNorm.weight').replace('LayerNorm.beta', 'LayerNorm.bias'): v
            for k, v in state.items()
            if not k.startswith('decoder.')  # the tied word embeddings / the bias again
        }
        if not state:
            logger.info(
                f'{pretrained} has no MLM head (no cls.predictions.* tensors): the MLM head starts from random '
                'initialisation'
            )
            return False
        missing, unexpected = self.mlm_head.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith('predictions.decoder.')]
        if missing or unexpected:
            raise RuntimeError(f'MLM head of {pretrained} does not fit: missing {missing}, unexpected {unexpected}')
        logger.info(f'MLM head initialised from {pretrained} (cls.predictions; decoder tied to the word embeddings)')
        return True

    @abstractmethod
    def itm_logits(self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Match logits of each (image, text) pair: ``(B, 2)``, class 1 = matched."""

    @abstractmethod
    def mlm_logits(
        self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Vocabulary logits: ``(B, L, V)``, or ``(M, V)`` at ``positions`` (the masked
        tokens; predicting only those saves most of the ``L x V`` output layer):
        ``(M,)`` int64 indices into the flattened ``B x L`` tokens (no host
        synchronisation), or a ``(B, L)`` bool mask (its True entries)."""

    @staticmethod
    def select_positions(fused: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
        """``(B, L, D)`` tokens at ``positions`` (see :meth:`mlm_logits`): ``(M, D)``, or all."""
        if positions is None:
            return fused
        if positions.dtype == torch.bool:  # boolean indexing: the device reports M to the host
            return fused[positions]
        return fused.flatten(0, 1).index_select(0, positions)

    def tie_word_embeddings(self, embeddings: nn.Embedding) -> None:
        """Share the MLM decoder weights with the text encoder's word embeddings (BERT, ALBEF)."""
        self._require('mlm_head').predictions.decoder.weight = embeddings.weight

    def _require(self, name: str) -> nn.Module:
        """The head ``name`` (``'itm_head'`` or ``'mlm_head'``), or a clear error when it was not built."""
        head = getattr(self, name, None)
        if head is None:
            flag = 'with_match_head' if name == 'itm_head' else 'with_mlm_head'
            raise RuntimeError(
                f'{type(self).__name__} was built with {flag}=False (the model was configured '
                f'without the loss that trains it): it has no {name}'
            )
        return head
