"""Caption-equivalent recall: a query is also answered by every target that carries an identical caption.

RSICD pads its images to five captions by repeating them, and short generic
captions sit on several images, so a caption query can have several equally
right images. Standard recall counts only the caption's own image; this
module's recall counts every image that carries the same caption (after
:func:`normalise_caption`), and says how many queries that touches
(:func:`shared_captions`). It is reported beside the standard recall, never in
its place.

The relation is symmetric: image ``i`` answers caption query ``t`` exactly
when caption ``t`` answers image query ``i``, namely when ``t``'s string is one
of ``i``'s caption strings. So one set of (image, caption) pairs
(:func:`equivalent_pairs`) serves both directions, as the ground truth does for
standard recall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rsretrieval.utils.caption_words import caption_words

from .ranking import best_of_pairs, dense_pair_ranks
from .recall import recall_from_ranks, similarity_pair
from .relevance import RelevantPairs, check_ground_truth

ArrayLike = np.ndarray | torch.Tensor


def normalise_caption(text: str) -> str:
    """The form in which two captions are compared: "identical" means equal after this.

    Lower-cases, drops apostrophes (``building's`` -> ``buildings``), turns
    every run of other characters than ``a-z`` and ``0-9`` (punctuation, white
    space, accented letters) into one space, and strips both ends. This is the
    rule of the datasets' caption cleaning (``rsretrieval.datasets.text.clean_caption``)
    without its word limit, so:

    - it leaves every caption a dataset holds unchanged (it is idempotent:
      ``normalise_caption(normalise_caption(x)) == normalise_caption(x)``);
    - raw text given from Python compares as a dataset would hold it:
      ``'A  farm land.'``, ``'a farm land'`` and ``'A farm land !'`` are identical.

    Args:
        text: A caption, cleaned or raw.

    Returns:
        The normalised caption; empty if ``text`` holds no letter or digit.
    """
    return ' '.join(caption_words(text))


def _holders(captions: Sequence[str], txt2img: Sequence[int]) -> tuple[list[str], dict[str, list[int]]]:
    """Each caption's normalised string, and the sorted images carrying each string.

    Raises:
        ValueError: ``captions`` and ``txt2img`` differ in length, or a caption
            normalises to nothing (it would be identical to every other such caption).
    """
    if len(captions) != len(txt2img):
        raise ValueError(
            f'captions has {len(captions)} entries, txt2img {len(txt2img)}: one caption string per caption'
        )
    strings = [normalise_caption(c) for c in captions]
    holders: dict[str, set[int]] = {}
    for t, (string, image) in enumerate(zip(strings, txt2img)):
        if not string:
            raise ValueError(f'caption {t} ({captions[t]!r}) has no letter or digit: it cannot be compared')
        holders.setdefault(string, set()).add(int(image))
    return strings, {s: sorted(images) for s, images in holders.items()}


def equivalent_pairs(
    captions: Sequence[str], img2txt: Sequence[Sequence[int]], txt2img: Sequence[int]
) -> RelevantPairs:
    """Caption equivalence as (image, caption) pairs: image ``i`` with every caption identical to one of its own.

    For a caption query ``t`` the relevant images are every image carrying a
    caption identical to ``t``; for an image query ``i`` the relevant captions
    are every caption identical to one of ``i``'s captions. Both read the same
    pairs (see the module docstring), which include the ground truth.

    Args:
        captions: ``(N_txt,)`` the captions, cleaned or raw (see :func:`normalise_caption`).
        img2txt: ``img2txt[i]`` = caption indices of image ``i``.
        txt2img: ``txt2img[t]`` = image index of caption ``t``.

    Returns:
        The pairs, in caption order and, within a caption, image order.
    """
    check_ground_truth(img2txt, txt2img, len(img2txt), len(txt2img))
    strings, holders = _holders(captions, txt2img)
    images = [i for s in strings for i in holders[s]]
    caption_ids = [t for t, s in enumerate(strings) for _ in holders[s]]
    return RelevantPairs(
        torch.tensor(images, dtype=torch.long), torch.tensor(caption_ids, dtype=torch.long), len(img2txt), len(txt2img)
    )


@dataclass(frozen=True)
class SharedCaptions:
    """How far caption equivalence reaches in a test set.

    Args:
        strings: Distinct normalised captions carried by more than one image.
        text_queries: Captions whose string more than one image carries (their
            query has more than one right image).
        image_queries: Images with a caption that another image carries too
            (their query has a right caption of another image).
        n_img: Images in the test set.
        n_txt: Captions in the test set.
    """

    strings: int
    text_queries: int
    image_queries: int
    n_img: int
    n_txt: int


def shared_captions(
    captions: Sequence[str], img2txt: Sequence[Sequence[int]], txt2img: Sequence[int]
) -> SharedCaptions:
    """Count the caption strings on more than one image and the queries they touch (see :class:`SharedCaptions`)."""
    check_ground_truth(img2txt, txt2img, len(img2txt), len(txt2img))
    strings, holders = _holders(captions, txt2img)
    shared = {s for s, images in holders.items() if len(images) > 1}
    touched_captions = [t for t, s in enumerate(strings) if s in shared]
    return SharedCaptions(
        strings=len(shared),
        text_queries=len(touched_captions),
        image_queries=len({int(txt2img[t]) for t in touched_captions}),
        n_img=len(img2txt),
        n_txt=len(txt2img),
    )


def recall_at_k_equivalent(
    sims_i2t: ArrayLike,
    sims_t2i: ArrayLike,
    captions: Sequence[str],
    img2txt: Sequence[Sequence[int]],
    txt2img: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """:func:`~rsretrieval.evaluation.recall_at_k` where identical captions count as equally right.

    A caption query is a hit at K when any image carrying an identical caption
    is in its top K; an image query when any caption identical to one of its
    own is. A query's rank is the best rank over its relevant targets, ties
    broken by index as in :func:`~rsretrieval.evaluation.ranking.gt_ranks`. The
    relevant targets include the ground truth, so every value is at least the
    standard one, and equal to it when no caption string sits on two images.

    Args:
        sims_i2t: ``(N_img, N_txt)`` scores ranked row-wise.
        sims_t2i: ``(N_img, N_txt)`` scores ranked column-wise.
        captions: ``(N_txt,)`` the captions (cleaned or raw; see :func:`normalise_caption`).
        img2txt: ``img2txt[i]`` = caption indices of image ``i``.
        txt2img: ``txt2img[t]`` = image index of caption ``t``.
        ks: The K values.

    Returns:
        The keys of :func:`~rsretrieval.evaluation.recall_at_k`: ``i2t_R@K``,
        ``t2i_R@K`` and ``mR``, in percent.
    """
    s_i2t, s_t2i = similarity_pair(sims_i2t, sims_t2i)
    check_ground_truth(img2txt, txt2img, *s_i2t.shape)
    pairs = equivalent_pairs(captions, img2txt, txt2img)
    return recall_from_ranks(*best_of_pairs(dense_pair_ranks(s_i2t, s_t2i, pairs), pairs), ks)
