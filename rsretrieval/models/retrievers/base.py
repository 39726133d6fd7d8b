"""The contract every retrieval model honours."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch
from mmengine.model import BaseModel

from rsretrieval.weights.loading import ConciseInitInfo


class BaseRetriever(ConciseInitInfo, BaseModel, metaclass=ABCMeta):
    """Base class of retrieval models.

    Loops and tools only use this interface, so any model that implements it
    can be trained, evaluated, reranked and searched with:

    - :meth:`encode_image` ``(B, 3, H, W) -> (B, E)`` L2-normalised;
    - :meth:`encode_text` ``list[str] -> (B, E)`` L2-normalised;
    - :meth:`similarity` ``(N_img, E), (N_txt, E) -> (N_img, N_txt)``;
    - :meth:`loss` on a preprocessed training batch -> dict of losses.

    A model that scores pairs jointly (a match head over every pair) may
    return, from the two encoders, dicts of tensors whose first dimension is
    the batch; the loops concatenate and gather them key by key and pass them
    to its :meth:`similarity`.

    Models with a match head (a fusion encoder) also implement
    :meth:`encode_image_for_matching`, :meth:`encode_text_for_matching` and
    :meth:`match_scores`, which the ITM reranker uses.

    ``forward(inputs, data_samples, mode)`` dispatches mmengine's modes:
    ``'loss'`` -> :meth:`loss`; ``'predict'`` -> dict of image embeddings (and
    text embeddings when the batch has captions); ``'tensor'`` -> image
    embeddings.
    """

    @abstractmethod
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Embed preprocessed images: ``(B, 3, H, W) -> (B, E)``."""

    @abstractmethod
    def encode_text(self, captions: list[str]) -> torch.Tensor:
        """Embed cleaned captions: ``B`` strings ``-> (B, E)``."""

    @abstractmethod
    def loss(self, inputs: torch.Tensor, data_samples: dict) -> dict[str, torch.Tensor]:
        """Training losses of a preprocessed batch."""

    def similarity(self, img_emb: torch.Tensor, txt_emb: torch.Tensor, progress: bool = False) -> torch.Tensor:
        """Cosine similarity of normalised embeddings, in fp32: ``(N_img, N_txt)``.

        ``progress`` asks models that score pairs one by one for a progress bar.
        """
        return img_emb.float() @ txt_emb.float().T

    def encode_image_for_matching(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Embeddings and what :meth:`match_scores` needs: a dict with ``emb``
        ``(B, E)`` and tensors of first dimension ``B``."""
        raise NotImplementedError(f'{type(self).__name__} has no match head: rerank with MR or SMR instead of ITM')

    def encode_text_for_matching(self, captions: list[str]) -> dict[str, torch.Tensor]:
        """As :meth:`encode_image_for_matching`, for captions."""
        raise NotImplementedError(f'{type(self).__name__} has no match head: rerank with MR or SMR instead of ITM')

    def match_scores(
        self, image_feats: dict, text_feats: dict, image_idx: torch.Tensor, text_idx: torch.Tensor
    ) -> torch.Tensor:
        """Match probability of the pairs ``(image_idx[p], text_idx[p])``: ``(P,)``."""
        raise NotImplementedError(f'{type(self).__name__} has no match head: rerank with MR or SMR instead of ITM')

    def forward(self, inputs: torch.Tensor, data_samples: dict | None = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples or {})
        if mode == 'predict':
            out = dict(img_emb=self.encode_image(inputs))
            if data_samples and 'caption' in data_samples:
                out['txt_emb'] = self.encode_text(data_samples['caption'])
            return out
        if mode == 'tensor':
            return self.encode_image(inputs)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")
