"""Checkpoint and stop cleanly when the job is asked to stop (SIGTERM)."""

from __future__ import annotations

import os
import signal
import threading

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import Hook

from rsretrieval.registry import HOOKS
from rsretrieval.utils.checkpoint import atomic_write


@HOOKS.register_module()
class PreemptionHook(Hook):
    """On SIGTERM (by default; e.g. Slurm preemption, ``kill``, a scheduler's
    time limit), finish the current iteration, save ``iter_<n>.pth`` with the
    optimizer, schedulers and random state, point ``last_checkpoint`` at it and
    exit with status ``128 + signal`` (143 for SIGTERM).

    ``tools/train.py CONFIG --resume`` then continues from that iteration; with
    :class:`~rsretrieval.engine.RetrievalTrainLoop` the run ends as if it had
    never stopped. A SIGKILL cannot be caught: keep periodic checkpoints
    (``default_hooks.checkpoint``) for that case. With several processes the
    request is all-reduced, so every rank stops after the same iteration.

    Args:
        signals: Names of the signals that request the stop.
    """

    priority = 'LOWEST'  # after the other hooks of the iteration (the checkpoint hook too)

    def __init__(self, signals: tuple[str, ...] = ('SIGTERM',)) -> None:
        self.signals = tuple(getattr(signal, name) for name in signals)
        self._received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        self._received = signum

    @property
    def stop_requested(self) -> bool:
        """A signal arrived in this process (the loop then reads its pending losses)."""
        return self._received is not None

    def before_train(self, runner) -> None:
        if threading.current_thread() is not threading.main_thread():
            runner.logger.warning('PreemptionHook: not in the main thread, signal handlers not installed')
            return
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)

    def after_train(self, runner) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        requested = self._received
        if get_world_size() > 1:
            flag = torch.tensor([float(requested or 0)], device=_device(runner))
            all_reduce(flag, op='max')
            requested = int(flag.item()) or None
        if requested is None:
            return
        filename = f'iter_{runner.iter + 1}.pth'
        runner.save_checkpoint(runner.work_dir, filename, by_epoch=False)
        if is_main_process():
            atomic_write(os.path.join(runner.work_dir, 'last_checkpoint'), os.path.join(runner.work_dir, filename))
        name = signal.Signals(requested).name
        runner.logger.warning(
            f'{name} received: saved {filename} after iteration {runner.iter + 1} and stopped; '
            'continue with tools/train.py CONFIG --resume'
        )
        self.after_train(runner)
        raise SystemExit(128 + requested)


def _device(runner) -> torch.device:
    try:
        return next(runner.model.parameters()).device
    except StopIteration:
        return torch.device('cpu')
