"""Checkpoint and stop cleanly when the job is asked to stop (SIGTERM, Ctrl-C)."""

from __future__ import annotations

import os
import signal
import threading

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import Hook

from rsretrieval.registry import HOOKS
from rsretrieval.utils.atomic_files import atomic_write

from ..atomic_backend import atomic_local_saves
from ..stop_signals import STOP_SIGNALS, leave_stop_signals_to_main_process
from .file_client_warnings import file_client_deprecations_dropped


@HOOKS.register_module()
class PreemptionHook(Hook):
    """On SIGTERM or SIGINT (by default; Slurm preemption, ``kill``, a
    scheduler's time limit, torchrun's shutdown, Ctrl-C), finish the current
    iteration, save ``iter_<n>.pth`` with the optimizer, schedulers and random
    state, point ``last_checkpoint`` at it, log one line saying how to resume
    and exit with status ``128 + signal`` (143 for SIGTERM, 130 for SIGINT).

    The signal may reach the whole process group: the training and validation
    loaders' workers leave it to the main process
    (:func:`~rsretrieval.engine.stop_signals.leave_stop_signals_to_main_process`),
    so that they keep serving batches until the iteration is over. A signal
    that the process was started to ignore (SIGINT in a shell's background
    job) stays ignored.

    ``tools/train.py CONFIG --resume`` then continues from that iteration; with
    :class:`~rsretrieval.engine.RetrievalTrainLoop` the run ends as if it had
    never stopped. A SIGKILL cannot be caught: keep periodic checkpoints
    (``default_hooks.checkpoint``) for that case. With several processes the
    request is all-reduced, so every rank stops after the same iteration.

    Args:
        signals: Names of the signals that request the stop.
    """

    priority = 'LOWEST'  # after the other hooks of the iteration (the checkpoint hook too)

    def __init__(self, signals: tuple[str, ...] = STOP_SIGNALS) -> None:
        self.signal_names = tuple(signals)
        self.signals = tuple(getattr(signal, name) for name in signals)
        self._received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        self._received = signum

    def needs_losses(self, runner, batch_idx: int) -> bool:
        """Whether a signal arrived in this process: this step may be the last, so the
        training loop reads the waiting losses before its ``after_train_iter``."""
        return self._received is not None

    def before_train(self, runner) -> None:
        if threading.current_thread() is not threading.main_thread():
            runner.logger.warning('PreemptionHook: not in the main thread, signal handlers not installed')
            return
        for signum in self.signals:
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue  # started to ignore it (SIGINT in a shell's background job): it stays ignored
            self._previous[signum] = signal.signal(signum, self._handle)
        val_loop = getattr(runner, 'val_loop', None)
        for loop in (runner.train_loop, val_loop):
            if loop is not None:
                leave_stop_signals_to_main_process(loop.dataloader, self.signal_names)

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
        with atomic_local_saves(), file_client_deprecations_dropped():
            runner.save_checkpoint(runner.work_dir, filename, by_epoch=False)
        if is_main_process():
            atomic_write(os.path.join(runner.work_dir, 'last_checkpoint'), os.path.join(runner.work_dir, filename))
        name = signal.Signals(requested).name
        runner.logger.warning(
            f'{name} received: saved {filename} after iteration {runner.iter + 1} and stopped; '
            'continue with the same command and --resume'
        )
        self.after_train(runner)
        raise SystemExit(128 + requested)


def _device(runner) -> torch.device:
    try:
        return next(runner.model.parameters()).device
    except StopIteration:
        return torch.device('cpu')
