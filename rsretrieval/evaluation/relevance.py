"""Which targets answer which query: the ground truth, and relations wider than it, as (image, caption) pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def check_ground_truth(img2txt: Sequence[Sequence[int]], txt2img: Sequence[int], n_img: int, n_txt: int) -> None:
    """Check that ``img2txt`` and ``txt2img`` describe the same pairs.

    Raises:
        ValueError: Sizes disagree with the matrix, an image has no caption, or
            the two maps contradict each other (the message names the index).
    """
    if len(img2txt) != n_img or len(txt2img) != n_txt:
        raise ValueError(
            f'ground truth has {len(img2txt)} images / {len(txt2img)} captions, '
            f'the similarity matrix is {n_img} x {n_txt}'
        )
    for i, caps in enumerate(img2txt):
        if len(caps) == 0:
            raise ValueError(f'image {i} has no caption in img2txt')
        for t in caps:
            if not 0 <= t < n_txt or txt2img[t] != i:
                raise ValueError(f'img2txt[{i}] lists caption {t}, but txt2img[{t}] is not {i}')
    counted = sum(len(c) for c in img2txt)
    if counted != n_txt:
        raise ValueError(f'img2txt lists {counted} captions, txt2img has {n_txt}')


@dataclass(frozen=True)
class RelevantPairs:
    """The (image, caption) pairs that count as right answers, in both directions.

    Pair ``p`` says: caption ``captions[p]`` answers the image query
    ``images[p]`` (image-to-text), and image ``images[p]`` answers the caption
    query ``captions[p]`` (text-to-image). The ground truth is one such
    relation (:meth:`ground_truth`: each caption with its own image); caption
    equivalence is a wider one
    (:func:`~rsretrieval.evaluation.caption_equivalence.equivalent_pairs`).
    A query's rank is the best rank of its relevant targets, so every image and
    every caption needs at least one pair.

    Args:
        images: ``(P,)`` int64 image index of each pair.
        captions: ``(P,)`` int64 caption index of each pair.
        n_img: Images in the test set.
        n_txt: Captions in the test set.
    """

    images: torch.Tensor
    captions: torch.Tensor
    n_img: int
    n_txt: int

    def __post_init__(self) -> None:
        if self.images.shape != self.captions.shape or self.images.ndim != 1:
            raise ValueError(
                f'images {tuple(self.images.shape)} and captions {tuple(self.captions.shape)} '
                'must be two 1-D tensors of the same length'
            )
        for name, index, n in (('image', self.images, self.n_img), ('caption', self.captions, self.n_txt)):
            if index.dtype != torch.long:
                raise ValueError(f'{name} indices must be int64, got {index.dtype}')
            outside = index[(index < 0) | (index >= n)]
            if len(outside):
                raise ValueError(f'a pair names {name} {int(outside[0])}, outside [0, {n})')
            unanswered = torch.ones(n, dtype=torch.bool)
            unanswered[index] = False
            if bool(unanswered.any()):
                first = int(unanswered.nonzero()[0])
                raise ValueError(f'{name} {first} has no relevant pair: its query could never be answered')

    @classmethod
    def ground_truth(cls, txt2img: Sequence[int], n_img: int) -> RelevantPairs:
        """Standard recall's relation: caption ``t`` with its image ``txt2img[t]`` only (pairs in caption order)."""
        images = torch.as_tensor(list(txt2img), dtype=torch.long)  # (N_txt,)
        return cls(images, torch.arange(len(images)), n_img, len(images))

    def where(self, keep: torch.Tensor) -> RelevantPairs:
        """The relation made of the pairs ``keep`` (``(P,)`` bool) selects; every query must keep a pair."""
        return RelevantPairs(self.images[keep], self.captions[keep], self.n_img, self.n_txt)

    def __len__(self) -> int:
        return len(self.images)
