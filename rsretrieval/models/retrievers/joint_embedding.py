"""The abstract base of embedding retrievers: two encoders and their projections into one joint space."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmengine.dist import get_world_size
from torch import nn

from rsretrieval.registry import BACKBONES, TEXT_ENCODERS

from .base import BaseRetriever


class JointEmbeddingRetriever(BaseRetriever):
    """Image encoder + text encoder, each projected into one joint embedding space.

    An abstract base: it embeds and compares, it trains nothing (no losses);
    subclasses add the losses. The image embedding is the projected global
    token (index 0 of the backbone output), the text embedding the projected
    ``[CLS]`` token (or the masked mean of the text tokens), both
    L2-normalised.

    The encoders and their projections form two towers, ``(backbone,
    image_proj)`` and ``(text_encoder, text_proj)`` (:attr:`towers`); the
    momentum copies of :class:`~.pre_alignment.PreAlignment` follow them and
    embed with :meth:`embed_image_with` and :meth:`embed_text_with`.

    Args:
        backbone: ``BACKBONES`` config.
        text_encoder: ``TEXT_ENCODERS`` config.
        embed_dim: Width of the joint embedding space; None when both encoders
            already end in one joint space of equal width (CLIP's towers): no
            projection then.
        text_pooling: ``'cls'`` (the paper, ALBEF) or ``'mean'`` (masked mean
            of the text tokens; better for encoders pretrained with mean
            pooling, such as MiniLM sentence embeddings).
        data_preprocessor: Data preprocessor config.
        init_cfg: mmengine initialisation config.
    """

    #: The model's modules of each tower, in the order they run.
    towers: dict[str, tuple[str, ...]] = {
        'image': ('backbone', 'image_proj'),
        'text': ('text_encoder', 'text_proj'),
    }

    def __init__(
        self,
        backbone: dict,
        text_encoder: dict,
        embed_dim: int | None = 256,
        text_pooling: str = 'cls',
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor or dict(type='RetrievalDataPreprocessor'), init_cfg=init_cfg
        )
        if text_pooling not in ('cls', 'mean'):
            raise ValueError(f"text_pooling must be 'cls' or 'mean', got {text_pooling!r}")
        self.text_pooling = text_pooling
        self.backbone = BACKBONES.build(backbone)
        self.text_encoder = TEXT_ENCODERS.build(text_encoder)
        image_width, text_width = self.backbone.out_channels, self.text_encoder.out_channels
        if embed_dim is None and image_width != text_width:
            raise ValueError(
                f'{type(self).__name__}: the image encoder embeds in {image_width} dimensions, the text encoder in '
                f'{text_width}: set embed_dim to project both into one space'
            )
        #: Width of the joint embedding space.
        self.embed_dim: int = embed_dim or image_width
        self.image_proj = nn.Linear(image_width, embed_dim) if embed_dim else nn.Identity()
        self.text_proj = nn.Linear(text_width, embed_dim) if embed_dim else nn.Identity()

    def tower(self, name: str) -> nn.ModuleList:
        """The modules of tower ``name`` (``'image'`` or ``'text'``), in the order they run."""
        return nn.ModuleList([getattr(self, module) for module in self.towers[name]])

    def embed_image_with(self, tower: Sequence[nn.Module], images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(B, 1 + N, Di)`` and embedding ``(B, E)`` of images through ``(backbone, projection)``."""
        backbone, projection = tower
        tokens = backbone(images)
        return tokens, F.normalize(projection(tokens[:, 0]), dim=-1)

    def embed_text_with(
        self, tower: Sequence[nn.Module], input_ids: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(B, L, D)`` and embedding ``(B, E)`` of token ids through ``(text encoder, projection)``."""
        encoder, projection = tower
        tokens = encoder(input_ids, mask)
        return tokens, F.normalize(projection(self.pool_text(tokens, mask)), dim=-1)

    def image_tokens(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone tokens ``(B, 1 + N, Di)`` and the image embedding ``(B, E)``."""
        return self.embed_image_with((self.backbone, self.image_proj), images)

    def text_tokens(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Text-encoder tokens ``(B, L, D)`` and the text embedding ``(B, E)``."""
        return self.embed_text_with((self.text_encoder, self.text_proj), input_ids, mask)

    def pool_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, L, D)`` tokens -> ``(B, D)``: the ``[CLS]`` token or the masked mean."""
        if self.text_pooling == 'cls':
            return tokens[:, 0]
        weights = mask.unsqueeze(-1).to(tokens.dtype)  # (B, L, 1)
        return (tokens * weights).sum(1) / weights.sum(1)

    def training_tokens(
        self, captions: list[str], device: torch.device
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Captions tokenised on the host, and their ids and mask ``(B, L)`` copied to ``device``.

        The host copy serves host-side work (MLM masking, the ITM check) that
        must not wait for the device. With several processes every caption is
        padded to ``max_length``: one caption length on every rank, so that
        tokens can be all-gathered.
        """
        pad = get_world_size() > 1
        cpu_tokens = self.text_encoder.tokenize(captions, device='cpu', pad_to_max_length=pad)
        ids, mask = (cpu_tokens[k].to(device, non_blocking=True) for k in ('input_ids', 'attention_mask'))
        return cpu_tokens, ids, mask

    def weights_device(self) -> torch.device:
        """Where the model's weights are (and captions are tokenised to)."""
        return next(self.text_encoder.parameters()).device

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_tokens(images)[1]

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        batch = self.text_encoder.tokenize(captions, device=self.weights_device())
        return self.text_tokens(batch['input_ids'], batch['attention_mask'])[1]
