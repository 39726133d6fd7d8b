"""A test set made of parts (a combined dataset's sources), evaluated part by part.

A dataset with a ``parts`` attribute holds several test sets end to end. Each
part is ranked on its own (its images against its captions only), so its
figures are those it would get alone; the loops report every part and the
mean over the parts (:func:`metrics_over_parts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .metric_keys import common_metric_keys

#: Key prefixes the metrics use themselves; a part of that name would make keys ambiguous.
RESERVED_PART_NAMES = ('raw', 'equiv', 'shared')


class Part(Protocol):
    """One part of a test set: its name and the global ids of its images and captions."""

    name: str
    images: range
    captions: range


def _check_one(index: int, part: Part, seen: set[str]) -> None:
    where = f'parts[{index}]'
    name = getattr(part, 'name', None)
    if not isinstance(name, str) or not name or '/' in name or name in RESERVED_PART_NAMES or name in seen:
        raise ValueError(
            f'{where}.name must be a non-empty str without "/", unique, and none of {RESERVED_PART_NAMES}; got {name!r}'
        )
    for field in ('images', 'captions'):
        ids = getattr(part, field, None)
        if not isinstance(ids, range) or ids.step != 1 or len(ids) == 0:
            raise ValueError(f'{where} ({name!r}).{field} must be a non-empty range with step 1, got {ids!r}')


def _check_tiling(parts: Sequence[Part], field: str, total: int) -> None:
    """The parts' ``field`` ranges cover ``[0, total)`` end to end, each id once."""
    end = 0
    for part in sorted(parts, key=lambda p: getattr(p, field).start):
        ids = getattr(part, field)
        if ids.start != end:
            raise ValueError(
                f'part {part.name!r}: {field} start at {ids.start}, the parts before end at {end}; '
                f'the parts must cover the {total} {field} end to end, each once'
            )
        end = ids.stop
    if end != total:
        raise ValueError(f'the parts cover {field} up to {end}, the dataset has {total}')


def check_parts(parts: Sequence[Part], img2txt: Sequence[Sequence[int]], txt2img: Sequence[int]) -> list[Part]:
    """Validate a dataset's ``parts`` against its ground truth.

    Each part needs a unique ``name`` (a str without ``/``, not one of
    :data:`RESERVED_PART_NAMES`) and non-empty step-1 ranges ``images`` and
    ``captions`` of global ids; the parts cover every image and every caption
    end to end, each once; a part's images own exactly its captions.

    Returns:
        The parts as a list, in their given order.

    Raises:
        ValueError: The first rule broken, naming the part.
    """
    if isinstance(parts, (str, bytes)) or not isinstance(parts, Sequence) or len(parts) == 0:
        raise ValueError(f'dataset.parts must be a non-empty sequence of parts, got {parts!r}')
    seen: set[str] = set()
    for index, part in enumerate(parts):
        _check_one(index, part, seen)
        seen.add(part.name)
    _check_tiling(parts, 'images', len(img2txt))
    _check_tiling(parts, 'captions', len(txt2img))
    for part in parts:
        for t in part.captions:
            if txt2img[t] not in part.images:
                raise ValueError(
                    f'part {part.name!r}: caption {t} belongs to image {txt2img[t]}, outside its images '
                    f'{part.images.start}..{part.images.stop - 1}'
                )
    return list(parts)


def part_ground_truth(
    part: Part, img2txt: Sequence[Sequence[int]], txt2img: Sequence[int], captions: Sequence[str]
) -> dict:
    """The part's ground truth renumbered to local ids (image ``part.images.start`` -> 0, likewise captions).

    Returns:
        ``dict(img2txt=..., txt2img=..., captions=...)``, the ``data_batch`` of
        :class:`~rsretrieval.evaluation.RetrievalRecall`.
    """
    i0, t0 = part.images.start, part.captions.start
    return dict(
        img2txt=[[t - t0 for t in img2txt[i]] for i in part.images],
        txt2img=[txt2img[t] - i0 for t in part.captions],
        captions=[captions[t] for t in part.captions],
    )


def metrics_over_parts(per_part: dict[str, dict[str, float]]) -> dict[str, float]:
    """Every part's metrics as ``<part>/<key>``, and every ``<key>`` as the mean over the parts.

    The unprefixed keys are plain means of the parts' values, each part
    weighted alike whatever its size: ``mR`` (what best-checkpoint selection
    reads) is the mean of the parts' ``mR``, and ``shared/text_queries`` the
    mean of their counts.

    Raises:
        ValueError: No part, or parts that report different keys.
    """
    if not per_part:
        raise ValueError('no part to average over')
    names = list(per_part)
    keys = common_metric_keys(per_part, lambda name: f'part {name!r}')
    out = {f'{name}/{k}': float(v) for name, metrics in per_part.items() for k, v in metrics.items()}
    out.update({k: float(np.mean([per_part[name][k] for name in names])) for k in keys})
    return out
