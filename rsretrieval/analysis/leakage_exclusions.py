"""The exclusion rule of the leakage check: which training images a training run must drop.

A pair of near-duplicates with one image in a held-out split (or a held-out
folder) and the other in a training split makes the training image an entry
of the exclusion list (format: :mod:`rsretrieval.datasets.exclusions`). The
held-out image stays: the test sets remain as published, and the training set
loses what would let a model see a test image. Pairs of two held-out images,
or of two training images, exclude nothing; the report counts them.
"""

from __future__ import annotations

from collections.abc import Iterable

from rsretrieval.datasets.exclusions import ExclusionEntry
from rsretrieval.weights.hashing import file_sha256

from .leakage_inputs import ImageRef
from .leakage_pairs import LeakPair


def exclusion_entries(pairs: Iterable[LeakPair]) -> list[ExclusionEntry]:
    """One entry per training image that has a held-out near-duplicate.

    The reason names the closest held-out image (the first in label order among
    equally close ones) and how many others it is close to.

    Args:
        pairs: The pairs found (any kind; only leaks count).

    Returns:
        The entries, in (source, split, filename) order, each with the sha256 of the training file.
    """
    closest: dict[tuple[str, str, str], list] = {}  # key -> [train image, held-out image, distance, held-out count]
    for pair in pairs:
        if pair.kind != 'leak':
            continue
        train, held_out = pair.sides()
        key = (train.source, train.split, train.filename)
        known = closest.get(key)
        if known is None:
            closest[key] = [train, held_out, pair.distance, 1]
            continue
        known[3] += 1
        if (pair.distance, held_out.label) < (known[2], known[1].label):
            known[1], known[2] = held_out, pair.distance
    return [_entry(*closest[key]) for key in sorted(closest)]


def _entry(train: ImageRef, held_out: ImageRef, distance: int, held_out_count: int) -> ExclusionEntry:
    """The entry of one training image."""
    reason = f'near-duplicate of {held_out.label} (distance {distance})'
    if held_out_count > 1:
        others = held_out_count - 1
        reason += f' and of {others} other held-out image{"s" if others > 1 else ""}'
    return ExclusionEntry(train.source, train.split, train.filename, file_sha256(train.path), reason)
