"""Pairs of near-duplicate images across groups, from their window hashes.

The distance of two images is the smallest Hamming distance between the
whole-image hash of one and any window hash of the other (the whole image is
window 0, so whole against whole is included). Pairs are only looked for
across groups: one faiss ``IndexBinaryFlat`` holds a group's window hashes and
is searched with the whole-image hashes of every image of the other groups,
so each cross-group pair is measured both ways and no within-group pair is
computed at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

import numpy as np

from rsretrieval.utils.progress import Progress

from .leakage_inputs import ImageRef

#: Query images per range search: small enough for a progress line on a long search.
QUERY_CHUNK = 4096


@dataclass(frozen=True)
class PairArrays:
    """Image pairs as parallel arrays, each unordered pair once (``first < second``),
    sorted by distance, then ``first``, then ``second``.

    Attributes:
        first: ``[P]`` image index (into the codes searched).
        second: ``[P]`` image index.
        distance: ``[P]`` smallest Hamming distance of the two, in bits.
    """

    first: np.ndarray
    second: np.ndarray
    distance: np.ndarray

    def __len__(self) -> int:
        return len(self.distance)

    def within(self, threshold: int) -> PairArrays:
        """The pairs at ``threshold`` bits or closer."""
        keep = self.distance <= threshold
        return PairArrays(self.first[keep], self.second[keep], self.distance[keep])

    def beyond(self, threshold: int) -> PairArrays:
        """The pairs farther than ``threshold`` bits."""
        keep = self.distance > threshold
        return PairArrays(self.first[keep], self.second[keep], self.distance[keep])


def find_pairs(
    codes: np.ndarray, group_of: np.ndarray, radius: int, progress_stream: TextIO | None = None
) -> PairArrays:
    """Every pair of images of different groups at ``radius`` bits or closer.

    Args:
        codes: ``[N, windows, bytes]`` uint8 packed hashes; window 0 is the whole image.
        group_of: ``[N]`` int group of each image.
        radius: Largest distance kept, in bits.
        progress_stream: Where a progress line goes every 30 s (a search that takes less writes none);
            None: nowhere.

    Returns:
        The pairs, each once, at their smallest distance.
    """
    import faiss

    n, windows, width = codes.shape
    whole = np.ascontiguousarray(codes[:, 0])  # [N, bytes]
    groups = np.unique(group_of)
    found_first, found_second, found_distance = [], [], []
    queries = sum(int(np.count_nonzero(group_of != group)) for group in groups)
    progress = Progress(
        queries, 'compared', unit='images with the other groups', stream=progress_stream,
        enabled=progress_stream is not None,
    )  # fmt: skip
    for group in groups:
        members = np.flatnonzero(group_of == group)
        others = np.flatnonzero(group_of != group)
        if not len(others):
            continue
        index = faiss.IndexBinaryFlat(width * 8)
        index.add(np.ascontiguousarray(codes[members].reshape(-1, width)))  # [members * windows, bytes]
        for start in range(0, len(others), QUERY_CHUNK):
            chunk = others[start : start + QUERY_CHUNK]
            # faiss keeps distances strictly below the radius it is given
            lims, distances, hits = index.range_search(whole[chunk], radius + 1)
            found_first.append(np.repeat(chunk, np.diff(lims).astype(np.int64)))
            found_second.append(members[hits // windows])
            found_distance.append(distances)
            progress.update(len(chunk))
    progress.close()
    if not found_distance:
        empty = np.empty(0, np.int64)
        return PairArrays(empty, empty, empty)
    return _closest_per_pair(np.concatenate(found_first), np.concatenate(found_second), np.concatenate(found_distance))


def _closest_per_pair(a: np.ndarray, b: np.ndarray, distance: np.ndarray) -> PairArrays:
    """Each unordered pair once, at its smallest distance, sorted by distance then indices."""
    first, second = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    distance = distance.astype(np.int64)
    order = np.lexsort((distance, second, first))  # by pair, closest first
    first, second, distance = first[order], second[order], distance[order]
    new_pair = np.ones(len(first), bool)
    new_pair[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
    first, second, distance = first[new_pair], second[new_pair], distance[new_pair]
    order = np.lexsort((second, first, distance))
    return PairArrays(first[order], second[order], distance[order])


@dataclass(frozen=True)
class LeakPair:
    """Two near-duplicate images of different groups.

    Attributes:
        first: One image.
        second: The other.
        distance: Their distance in bits.
    """

    first: ImageRef
    second: ImageRef
    distance: int

    @property
    def kind(self) -> str:
        """``'leak'`` (one side held out, the other training), ``'held-out'`` (both held out) or
        ``'train'`` (both training)."""
        if self.first.held_out != self.second.held_out:
            return 'leak'
        return 'held-out' if self.first.held_out else 'train'

    def sides(self) -> tuple[ImageRef, ImageRef]:
        """``(training image, held-out image)`` of a leak.

        Raises:
            ValueError: The pair is not a leak.
        """
        if self.kind != 'leak':
            raise ValueError(f'{self.first.label} and {self.second.label} are not a held-out/training pair')
        return (self.second, self.first) if self.first.held_out else (self.first, self.second)
