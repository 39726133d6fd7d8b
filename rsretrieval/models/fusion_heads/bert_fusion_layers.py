"""BERT layers with cross-attention to image tokens, bidirectional (ALBEF's fusion half)."""

from __future__ import annotations

import os

import torch
from mmengine.logging import MMLogger
from torch import nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertLayer

from ..text_encoders.bert import load_bert


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(B, L)`` 1/0 key mask -> ``(B, 1, 1, L)`` additive mask (0 or the dtype's min)."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class BertFusionLayers(nn.Module):
    """A stack of BERT layers: self-attention -> cross-attention(context) -> FFN.

    Built from HF ``BertLayer`` with ``is_decoder=True, add_cross_attention=True``
    (the only way transformers builds cross-attention), then made bidirectional:
    the self-attention's causal flag is cleared and explicit additive masks are
    passed, so every text token sees every other (tested: changing the last
    token changes the fused ``[CLS]``).

    Args:
        config: The BERT configuration (hidden size, heads, ...).
        num_layers: Layers in the stack.
        pretrained: Local BERT folder or packaged name whose layers initialise
            the stack (cross-attention stays newly initialised).
        layer_start: First pretrained layer to copy; ``None`` takes the last
            ``num_layers`` layers (BERT-base 12 layers -> 6..11; MiniLM 6 -> 0..5).
    """

    def __init__(
        self,
        config: BertConfig,
        num_layers: int,
        pretrained: str | os.PathLike | None = None,
        layer_start: int | None = None,
    ) -> None:
        super().__init__()
        config = BertConfig(**{**config.to_dict(), 'is_decoder': True, 'add_cross_attention': True})
        config._attn_implementation = 'sdpa'
        self.layers = nn.ModuleList(BertLayer(config, layer_idx=i) for i in range(num_layers))
        std = config.initializer_range
        for module in self.layers.modules():  # BERT's initialisation scheme
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for layer in self.layers:
            layer.attention.self.is_causal = False
            layer.crossattention.self.is_causal = False
        if pretrained is not None:
            self._load_pretrained(pretrained, layer_start)

    def _load_pretrained(self, pretrained: str | os.PathLike, layer_start: int | None) -> None:
        source = load_bert(pretrained).encoder.layer
        n = len(self.layers)
        start = len(source) - n if layer_start is None else layer_start
        if start < 0 or start + n > len(source):
            raise ValueError(f'{pretrained} has {len(source)} layers; cannot copy layers {start}..{start + n - 1}')
        for layer, src in zip(self.layers, source[start : start + n]):
            missing, unexpected = layer.load_state_dict(src.state_dict(), strict=False)
            if unexpected or any(not k.startswith('crossattention.') for k in missing):
                raise RuntimeError(f'layer weights of {pretrained} do not fit: {missing} {unexpected}')
        MMLogger.get_current_instance().info(
            f'Fusion layers initialised from layers {start}..{start + n - 1} of {pretrained} '
            '(cross-attention newly initialised)'
        )

    def forward(
        self,
        query: torch.Tensor,
        query_mask: torch.Tensor,
        context: torch.Tensor,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Update the ``query`` tokens with self-attention and attention to ``context``.

        Args:
            query: ``(B, Lq, D)`` tokens (text for PA-MI; text or image for Std-MI).
            query_mask: ``(B, Lq)`` 1 for real tokens, 0 for padding.
            context: ``(B, Lc, D)`` tokens attended to, already at width ``D``.
            context_mask: ``(B, Lc)`` or None (all real).

        Returns:
            ``(B, Lq, D)``.
        """
        self_mask = additive_mask(query_mask, query.dtype)
        cross_mask = None if context_mask is None else additive_mask(context_mask, query.dtype)
        for layer in self.layers:
            query = layer(query, self_mask, encoder_hidden_states=context, encoder_attention_mask=cross_mask)
        return query
