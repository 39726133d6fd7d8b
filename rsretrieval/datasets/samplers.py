"""A sampler whose samples carry their own random seed."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from mmengine.dataset import DefaultSampler

from rsretrieval.registry import DATA_SAMPLERS


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that depends only on ``(seed, epoch, index)``."""
    return int(
        np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, index]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1
    )


@DATA_SAMPLERS.register_module()
class ReproducibleSampler(DefaultSampler):
    """mmengine's ``DefaultSampler`` (same order, same split across ranks) whose
    items are ``(index, seed)`` pairs, with ``seed`` a function of the sampler's
    seed, the epoch and the index only.

    The dataset draws the sample's augmentation from a generator made from that
    seed, so a sample is augmented the same way whatever the number of loader
    workers, whether workers persist across epochs, and whether the run was
    resumed in the middle of an epoch. ``skip(n)`` makes the next iteration
    start after the first ``n`` samples of this rank (a resumed epoch does not
    repeat what was trained on).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._skip = 0

    def skip(self, num_samples: int) -> None:
        """Leave out the first ``num_samples`` samples of the next iteration only."""
        if num_samples < 0:
            raise ValueError(f'num_samples must be >= 0, got {num_samples}')
        self._skip = num_samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        skip, self._skip = self._skip, 0
        for position, index in enumerate(super().__iter__()):
            if position >= skip:
                yield index, sample_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        return self.num_samples
