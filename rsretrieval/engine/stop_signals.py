"""Stop signals (SIGTERM, SIGINT) handled once, by the main process.

A scheduler's preemption (Slurm, ``timeout``, ``kill -- -PGID``), torchrun's
shutdown and Ctrl-C signal a whole process group: the main process and its
data-loader workers together. torch's workers die on a SIGTERM that does not
come from their parent, and the main process then stops in a ``DataLoader
worker (pid ...) is killed by signal`` traceback before it can save anything.
Here the workers leave the stop signals to the main process,
which stops where it decides (:class:`~rsretrieval.engine.PreemptionHook`
after the current iteration; :func:`stop_on_signals` for evaluation and
indexing).

A stop signal from the worker's own parent still ends the worker at once, as
torch's handler does: the parent sends one only to stop its workers (a loader
that gives up on a stuck worker, ``multiprocessing`` at exit). Leaving the
others to the main process is safe: a worker ends when the main process stops
its loader (the stop message), when the main process is gone (torch's
``ManagerWatchdog`` notices within 5 s), and on a launcher's SIGKILL after its
grace period (torchrun, Slurm), which cannot be caught.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence

from mmengine.dataset import worker_init_fn as default_worker_init_fn

from rsretrieval.registry import FUNCTIONS

#: The signals that ask a run to stop.
STOP_SIGNALS = ('SIGTERM', 'SIGINT')


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived; ``signum`` says which (Ctrl-C raises it as ``KeyboardInterrupt``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's status for a process ended by this signal: ``128 + signum``."""
        return 128 + self.signum


def leave_signals_to_parent(names: Sequence[str] = STOP_SIGNALS) -> None:
    """In a worker process: the named signals end it when its parent sends them, and
    are ignored when anyone else does (a signal to the process group, Ctrl-C).

    The signals are blocked in the calling thread (and so in the threads it
    starts later) and a daemon thread takes them with ``sigwaitinfo``, which
    tells who sent each one; a Python handler cannot.
    """
    parent = os.getppid()
    numbers = {getattr(signal, name) for name in names}
    signal.pthread_sigmask(signal.SIG_BLOCK, numbers)

    def _wait() -> None:
        while True:
            if signal.sigwaitinfo(numbers).si_pid == parent:
                os._exit(0)

    threading.Thread(target=_wait, name='stop-signals', daemon=True).start()


@FUNCTIONS.register_module()
def worker_ignoring_stop_signals(
    worker_id: int,
    num_workers: int | None = None,
    rank: int | None = None,
    seed: int | None = None,
    disable_subprocess_warning: bool = False,
    signals: Sequence[str] = STOP_SIGNALS,
) -> None:
    """A data-loader ``worker_init_fn`` whose worker leaves ``signals`` to the main process
    (:func:`leave_signals_to_parent`).

    With ``seed``, the worker is then seeded as mmengine's default does
    (``num_workers * rank + worker_id + seed``; ``num_workers`` and ``rank``
    default to the loader's and the process's). For a ``DataLoader`` built
    directly; in a config, ``worker_init_fn=dict(type='rsretrieval.worker_ignoring_stop_signals',
    seed=0)`` replaces mmengine's seeding, which receives the run's seed only
    when the config names no ``worker_init_fn`` (the Runner's loaders need
    nothing: :class:`~rsretrieval.engine.PreemptionHook` and the tools wrap
    theirs with :func:`leave_stop_signals_to_main_process`).

    Args:
        worker_id: The worker's index, from the loader.
        num_workers: Workers of the loader.
        rank: Rank of the process.
        seed: The run's seed; None leaves torch's per-worker seeds.
        disable_subprocess_warning: Silence warnings in workers other than the first.
        signals: Names of the signals to leave to the main process.
    """
    leave_signals_to_parent(signals)
    if seed is None:
        return
    if num_workers is None:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        num_workers = info.num_workers if info is not None else 1
    if rank is None:
        from mmengine.dist import get_rank

        rank = get_rank()
    default_worker_init_fn(worker_id, num_workers, rank, seed, disable_subprocess_warning)


def _leave_signals_then_init(signals: tuple[str, ...], init: Callable[[int], None] | None, worker_id: int) -> None:
    leave_signals_to_parent(signals)
    if init is not None:
        init(worker_id)


def leave_stop_signals_to_main_process(loader, signals: Sequence[str] = STOP_SIGNALS) -> bool:
    """Make the workers of a built ``DataLoader`` leave ``signals`` to the main process
    (:func:`leave_signals_to_parent`).

    The loader's own ``worker_init_fn`` (mmengine's seeding) still runs, after.
    Call it before the loader's workers start (before its first iteration); a
    second call changes nothing.

    Returns:
        Whether the loader has workers to change.
    """
    if getattr(loader, 'num_workers', 0) == 0:
        return False
    init = loader.worker_init_fn
    if isinstance(init, functools.partial) and init.func is _leave_signals_then_init:
        return True
    loader.worker_init_fn = functools.partial(_leave_signals_then_init, tuple(signals), init)
    return True


@contextlib.contextmanager
def stop_on_signals(signals: Sequence[str] = STOP_SIGNALS) -> Iterator[None]:
    """Inside the block, the named signals raise :class:`StopRequested` in the main thread.

    For work that has nothing to save half-way (evaluation) or saves on
    ``KeyboardInterrupt`` (indexing): SIGTERM then unwinds the block like
    Ctrl-C, loaders shut their workers down, and the caller reports it in one
    line and exits with :attr:`StopRequested.exit_code`. Outside the main
    thread nothing changes, nor does a signal that the process was started
    to ignore (SIGINT in a shell's background job), as Python does for SIGINT.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise StopRequested(signum)

    numbers = [getattr(signal, name) for name in signals]
    previous = {n: signal.signal(n, _raise) for n in numbers if signal.getsignal(n) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
