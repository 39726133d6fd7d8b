"""The text tower of an open_clip model (CLIP, RemoteCLIP, GeoRSCLIP, ...) with CLIP's BPE tokenizer."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from mmengine.model import BaseModule
from torch import nn

from rsretrieval.registry import TEXT_ENCODERS

from ..utils.open_clip_tower import OpenCLIPTowerMixin
from ..utils.open_clip_weights import build_open_clip, open_clip_config
from .token_cache import TokenCache, pad_token_rows


class OpenCLIPTokenizer:
    """open_clip's ``SimpleTokenizer`` (its bundled BPE vocabulary, offline) with the
    attribute names the models read from a tokenizer.

    A caption becomes ``<start_of_text> ... <end_of_text>``, truncated to
    ``context_length`` with the end token kept last, exactly as open_clip's
    tokenizer does. CLIP's vocabulary has no mask token (``mask_token_id`` is
    None): MLM needs a BERT text encoder.

    Args:
        context_length: Tokens per caption at most, start and end included.
        **kwargs: ``SimpleTokenizer`` options (``clean``: the architecture's
            ``text_cfg.tokenizer_kwargs``).
    """

    def __init__(self, context_length: int = 77, **kwargs) -> None:
        from open_clip.tokenizer import SimpleTokenizer

        self.bpe = SimpleTokenizer(context_length=context_length, **kwargs)
        self.context_length = context_length
        self.vocab_size: int = self.bpe.vocab_size
        self.pad_token_id = 0  # open_clip pads with 0
        self.cls_token_id: int = self.bpe.sot_token_id
        self.sep_token_id: int = self.bpe.eot_token_id
        self.mask_token_id = None

    def __call__(self, texts: Sequence[str], max_length: int | None = None) -> list[tuple[int, ...]]:
        """Token ids of each text, start to end token, unpadded."""
        ids = self.bpe(list(texts), context_length=max_length or self.context_length).numpy()  # (N, L), 0-padded
        ends = (ids == self.sep_token_id).argmax(1)  # the first end token of each row
        return [tuple(row[: end + 1].tolist()) for row, end in zip(ids, ends)]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids (special tokens included)."""
        return self.bpe.decode(list(ids))


@TEXT_ENCODERS.register_module()
class OpenCLIPText(OpenCLIPTowerMixin, BaseModule):
    """open_clip's text transformer; ``forward(input_ids, attention_mask)`` returns ``(B, L, E)``.

    ``E`` is the CLIP embedding width (``out_channels``) and every token is in
    CLIP's joint space: the final LayerNorm's output projected by CLIP's
    ``text_projection``. **Index 0 is CLIP's text embedding**
    (``model.encode_text``: the end-of-text token's feature, projected, not
    normalised) in place of the start token's feature, which carries nothing
    under CLIP's causal attention (it sees itself only). So a retriever with
    ``text_pooling='cls'`` reads CLIP's embedding; ``'mean'`` would average the
    projected tokens instead (not CLIP's embedding). Positions ``1..L-1`` are the
    caption's tokens (then the end token, then padding, which
    ``attention_mask`` marks). Under the causal mask a token never sees later
    ones, so padding a batch to its longest caption leaves every caption's
    embedding as open_clip computes it at the full context length.

    The architecture is built with ``open_clip.create_model(arch, pretrained=None)``
    (random weights, nothing downloaded); ``pretrained`` loads the text tower of
    a local open_clip checkpoint in :meth:`init_weights`, exactly (a checkpoint
    of another architecture fails in one line naming both). The tokenizer is
    open_clip's, with its bundled vocabulary.

    Args:
        arch: open_clip architecture name or ``'local-dir:PATH'`` (see
            :class:`~rsretrieval.models.backbones.OpenCLIPVision`); towers whose
            text side is a Hugging Face model or uses another tokenizer (SigLIP)
            are refused (they download).
        pretrained: Local open_clip checkpoint; only its text tensors are used.
        model_cfg, init_cfg: As :class:`~rsretrieval.models.backbones.OpenCLIPVision`.
        max_length: Tokens per caption at most (start and end included);
            default: the architecture's context length (77), as open_clip.
        token_cache_size: Captions whose token ids are kept after their first
            tokenisation; 0 turns the cache off.
    """

    def __init__(
        self,
        arch: str = 'ViT-B-32',
        pretrained: str | os.PathLike | None = None,
        model_cfg: dict | None = None,
        max_length: int | None = None,
        token_cache_size: int = 200_000,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch, self.pretrained = arch, pretrained
        self.tower = 'text'
        text_cfg = open_clip_config(arch, model_cfg)['text_cfg']
        if text_cfg.get('hf_tokenizer_name') or 'siglip' in arch.lower():
            raise ValueError(f"{arch}: its tokenizer is not open_clip's bundled BPE (it would be downloaded)")
        model = build_open_clip(arch, model_cfg, keep='text')
        src = getattr(model, 'text', model)  # CustomTextCLIP nests the tower; CLIP holds its parts
        #: Where open_clip puts these tensors in a full model's state dict: '' (CLIP) or 'text.'.
        self.open_clip_prefix = 'text.' if src is not model else ''
        if getattr(src, 'cls_emb', None) is not None:
            raise ValueError(f'{arch}: text towers with an appended class token (CoCa) are not supported')
        if getattr(src, 'attn_mask', None) is None:
            raise ValueError(f'{arch}: bidirectional text towers (no causal mask) are not supported')
        self.token_embedding: nn.Embedding = src.token_embedding
        self.positional_embedding: nn.Parameter = src.positional_embedding
        self.transformer: nn.Module = src.transformer
        self.ln_final: nn.Module = src.ln_final
        self.text_projection = src.text_projection  # (W, E) parameter, Linear or None
        self.register_buffer('attn_mask', src.attn_mask, persistent=False)  # (ctx, ctx) causal, additive
        self.pool_type: str = getattr(src, 'text_pool_type', getattr(src, 'pool_type', 'argmax'))
        self.eos_id: int | None = getattr(src, 'text_eos_id', getattr(src, 'eos_id', None))
        self.context_length: int = int(src.positional_embedding.shape[0])
        for module in (self.token_embedding, self.transformer, self.ln_final):
            module.is_init = True  # open_clip initialised them; mmengine must not re-run an init
        self.tokenizer = OpenCLIPTokenizer(self.context_length, **(text_cfg.get('tokenizer_kwargs') or {}))
        self.max_length = max_length or self.context_length
        if not 2 <= self.max_length <= self.context_length:
            raise ValueError(f'max_length must be in [2, {self.context_length}] for {arch}, got {max_length}')
        self.token_cache_size = token_cache_size
        self._token_cache = TokenCache(token_cache_size)

    @property
    def out_channels(self) -> int:
        """Token width ``E`` (the CLIP embedding width)."""
        proj = self.text_projection
        if proj is None:
            return self.transformer.width
        return proj.out_features if isinstance(proj, nn.Linear) else proj.shape[1]

    # ------------------------------------------------------------------ tokens
    def token_ids(self, captions: list[str]) -> list[tuple[int, ...]]:
        """Token ids of each caption (start ... end, truncated to ``max_length``); captions
        seen before come from the cache, the others are tokenised in one call."""
        return self._token_cache.token_ids(captions, lambda new: self.tokenizer(new, self.max_length))

    def tokenize(
        self, captions: list[str], device: torch.device | str = 'cpu', pad_to_max_length: bool = False
    ) -> dict[str, torch.Tensor]:
        """Tokenise a batch, padded (with 0, as open_clip) to its longest caption or to ``max_length``.

        Returns:
            ``input_ids`` and ``attention_mask``, ``(B, L)`` int64 on ``device``.
        """
        rows = self.token_ids(list(captions))
        length = self.max_length if pad_to_max_length else max((len(r) for r in rows), default=0)
        return pad_token_rows(rows, length, self.tokenizer.pad_token_id, device)

    # ------------------------------------------------------------------ forward
    def _project(self, x: torch.Tensor) -> torch.Tensor:
        proj = self.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        # input_ids: (B, L) -> (B, L, E), CLIP's text embedding at index 0. attention_mask is not
        # needed: the causal mask keeps padding (after the end token) out of every real token.
        from open_clip.transformer import text_global_pool

        length = input_ids.shape[1]
        if length > self.context_length:
            raise ValueError(f'{self.arch} reads at most {self.context_length} tokens, got {length}')
        cast_dtype = self.transformer.get_cast_dtype()
        x = self.token_embedding(input_ids).to(cast_dtype)  # (B, L, W)
        x = x + self.positional_embedding[:length].to(cast_dtype)
        x = self.transformer(x, attn_mask=self.attn_mask[:length, :length])
        x = self.ln_final(x)  # (B, L, W)
        pooled = text_global_pool(x, input_ids, self.pool_type, eos_token_id=self.eos_id)  # (B, W): end token
        pooled = self._project(pooled)  # (B, E): open_clip's encode_text
        tokens = self._project(x)  # (B, L, E)
        return torch.cat([pooled.unsqueeze(1), tokens[:, 1:].to(pooled.dtype)], dim=1)
