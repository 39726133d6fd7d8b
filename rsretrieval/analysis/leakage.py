"""The leakage check: near-duplicate images across datasets, splits and folders.

``check_leaks`` hashes every image of the groups it is given
(:mod:`.leakage_hashing`), finds the pairs of images of different groups
within the threshold (:mod:`.leakage_pairs`) and applies the exclusion rule
(:mod:`.leakage_exclusions`); :mod:`.leakage_report` writes the results and
:mod:`.leakage_inputs` turns configs and folders into groups. The method and
its threshold were chosen by measurement on UCM-Captions (docs/leakage.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from rsretrieval.datasets.exclusions import ExclusionEntry

from .leakage_exclusions import exclusion_entries
from .leakage_hashing import WindowedPHash, hash_files, hashing_processes
from .leakage_inputs import DEFAULT_HELD_OUT_SPLITS, ImageGroup, ImageRef, LeakCheckError
from .leakage_pairs import LeakPair, PairArrays, find_pairs

#: The largest distance (bits of the 256 of :class:`WindowedPHash`'s default) at which two images are
#: near-duplicates: on UCM-Captions, 16 bits above the farthest copy re-encoded, resized, converted or cropped
#: by up to 5 % (36) and 16 below the closest pair of distinct images (68; docs/leakage.md).
DEFAULT_THRESHOLD = 52
#: Pairs up to this many bits above the threshold are reported as near misses (nothing is excluded for them).
DEFAULT_NEAR_MARGIN = 12


@dataclass
class LeakCheckResult:
    """What one check found.

    Attributes:
        method: The hash.
        threshold: Largest distance of a pair, in bits.
        near_margin: Bits above the threshold within which near misses are reported.
        held_out_splits: The config splits that were held out.
        groups: The groups compared, in input order.
        pairs: Pairs within the threshold, closest first.
        near_misses: Pairs within ``near_margin`` bits above the threshold, closest first.
        exclusions: The training images to drop.
        seconds: Time per stage (``'hash'``, ``'search'``, ``'exclusions'``) and ``'total'``.
        workers: Processes that hashed.
    """

    method: WindowedPHash
    threshold: int
    near_margin: int
    held_out_splits: tuple[str, ...]
    groups: list[ImageGroup]
    pairs: list[LeakPair]
    near_misses: list[LeakPair]
    exclusions: list[ExclusionEntry]
    seconds: dict[str, float] = field(default_factory=dict)
    workers: int = 1

    @property
    def images(self) -> int:
        """Images hashed."""
        return sum(len(group.filenames) for group in self.groups)

    def check_record(self) -> dict:
        """How the list was made, for the exclusion list's ``check`` key.

        Only what decides the findings (the hash, the threshold, the rule, the groups
        and their sizes): no times and no absolute paths, so the same check on another
        machine writes the same file, with the same sha256.
        """
        return dict(
            tool='tools/analysis_tools/check_leaks.py',
            method=self.method.describe(),
            threshold=self.threshold,
            held_out_splits=list(self.held_out_splits),
            groups=[
                dict(source=g.source, split=g.split, held_out=g.held_out, images=len(g.filenames)) for g in self.groups
            ],
            pairs=len(self.pairs),
        )


def check_leaks(
    groups: Sequence[ImageGroup],
    method: WindowedPHash | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    near_margin: int = DEFAULT_NEAR_MARGIN,
    held_out_splits: Sequence[str] = DEFAULT_HELD_OUT_SPLITS,
    workers: int | None = None,
    progress_stream: TextIO | None = None,
) -> LeakCheckResult:
    """Find the near-duplicate pairs across ``groups`` and the training images to exclude.

    Args:
        groups: At least two groups (:func:`~.leakage_inputs.read_groups`).
        method: The hash (default: :class:`WindowedPHash`'s defaults).
        threshold: Largest distance of a pair, in bits.
        near_margin: Near misses up to ``threshold + near_margin`` bits are reported too.
        held_out_splits: Recorded with the result (the groups already say what is held out).
        workers: Hashing processes (default: the CPUs this process may use).
        progress_stream: Where progress lines go; None: nowhere.

    Raises:
        LeakCheckError: Fewer than two groups, a threshold outside the hash, or an
            unreadable image (one line naming it).
    """
    method = method or WindowedPHash()
    _check_arguments(groups, method, threshold, near_margin)
    start = time.perf_counter()
    images = [group.image(i) for group in groups for i in range(len(group.filenames))]
    group_of = np.repeat(np.arange(len(groups)), [len(group.filenames) for group in groups])
    codes = hash_files([image.path for image in images], method, workers, progress_stream)
    hashed = time.perf_counter()
    found = find_pairs(codes, group_of, threshold + near_margin, progress_stream)
    searched = time.perf_counter()
    pairs = _resolve(found.within(threshold), images)
    exclusions = exclusion_entries(pairs)
    done = time.perf_counter()
    seconds = dict(hash=hashed - start, search=searched - hashed, exclusions=done - searched, total=done - start)
    return LeakCheckResult(
        method=method,
        threshold=threshold,
        near_margin=near_margin,
        held_out_splits=tuple(held_out_splits),
        groups=list(groups),
        pairs=pairs,
        near_misses=_resolve(found.beyond(threshold), images),
        exclusions=exclusions,
        seconds=seconds,
        workers=hashing_processes(len(images), workers),
    )


def _check_arguments(groups: Sequence[ImageGroup], method: WindowedPHash, threshold: int, near_margin: int) -> None:
    """One-line errors for what cannot give a meaningful check."""
    if len(groups) < 2:
        only = groups[0].label if groups else 'none'
        raise LeakCheckError(
            f'one group of images only ({only}): pairs are looked for across splits and inputs; '
            'give a config with several splits, or more inputs'
        )
    if not 0 <= threshold < method.bits:
        raise LeakCheckError(f'threshold {threshold} must be between 0 and {method.bits - 1} bits')
    if near_margin < 0:
        raise LeakCheckError(f'near-miss margin {near_margin} must be 0 or more bits')


def _resolve(found: PairArrays, images: list[ImageRef]) -> list[LeakPair]:
    """The pairs with their images, the side that comes first in input order first."""
    return [LeakPair(images[a], images[b], int(d)) for a, b, d in zip(found.first, found.second, found.distance)]
