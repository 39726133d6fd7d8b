"""Keep the random generators' state in checkpoints, so that a resumed run continues exactly."""

from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.hooks import Hook

from rsretrieval.registry import HOOKS


def get_random_state() -> dict:
    """The state of Python's, numpy's and torch's global generators, as tensors and numbers
    (loadable with ``torch.load(weights_only=True)``)."""
    version, py_state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = dict(
        python=dict(version=version, state=torch.tensor(py_state, dtype=torch.int64), gauss=gauss),
        numpy=dict(
            name=name,
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached=float(cached),
        ),  # fmt: skip
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    """Restore what :func:`get_random_state` returned."""
    py = state['python']
    random.setstate((py['version'], tuple(int(v) for v in py['state'].tolist()), py['gauss']))
    n = state['numpy']
    np.random.set_state((n['name'], n['keys'].numpy().astype(np.uint32), n['pos'], n['has_gauss'], n['cached']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available() and len(state['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state['cuda'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the global random state with every checkpoint; restore it when resuming.

    Together with :class:`~rsretrieval.engine.RetrievalTrainLoop` and
    :class:`~rsretrieval.datasets.ReproducibleSampler`, a run resumed from any
    checkpoint (an epoch's, an iteration's, or the one written on SIGTERM) draws
    the same dropout, MLM masks, ITM negatives and augmentations as the run it
    continues, and ends with the same weights on the same hardware. With
    several processes the checkpoint holds rank 0's state, which every rank
    restores: exact continuation is guaranteed for a single process.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending: dict | None = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['random_state'] = get_random_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, '_resume', False) and 'random_state' in checkpoint:
            self._pending = checkpoint['random_state']  # restored when training starts, after every other setup step

    def before_train(self, runner) -> None:
        if self._pending is not None:
            set_random_state(self._pending)
            self._pending = None
