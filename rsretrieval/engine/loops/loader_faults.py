"""Name the sample a data-loader worker was loading when it died, and stop in one line.

A worker killed by the out-of-memory killer, a crashing image decoder or ``kill -9``
makes torch raise ``RuntimeError: DataLoader worker (pid N) is killed by signal: Killed``
(from its SIGCHLD handler, wherever the main process happens to be) or, when that
handler missed it, ``... (pid(s) N) exited unexpectedly`` within 5 s (its status
poll). Neither says what the worker was doing.

:func:`track_workers` gives each worker of a loader a slot in shared memory: its
pid, the sample it is loading and the last one it finished. The worker writes it
before and after every sample; a killed process cannot undo writes already made to
a shared mapping, so the main process reads where it stopped.
:func:`report_worker_failures` turns torch's error into a one-line
:class:`LoaderWorkerError` naming the worker, the signal, the sample and its image.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import re
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterator

from torch.utils.data import DataLoader, get_worker_info
from torch.utils.data._utils.signal_handling import _error_if_any_worker_fails

# a worker's slot: pid, the sample it is loading (NONE between samples), the last it finished
_PID, _CURRENT, _LAST, _FIELDS = 0, 1, 2, 3
_NONE = -1
_UNKNOWN = -2  # a sampler item that is not an index
_FAILURE = re.compile(r'DataLoader worker \(pids?(?:\(s\))? ([\d, ]+)\)')
_EXIT_CODE = re.compile(r'exit code (-?\d+)')
_KILLED_BY = re.compile(r'killed by signal: ([^.]+)')
_HAS_WAITID = hasattr(os, 'waitid')  # Linux; not macOS or Windows, where torch's messages are all there is
_SETTLE_S = 2.0  # a worker whose death broke a connection is a zombie within milliseconds
# the trackers of this process, each living as long as its loader: a worker of any loader
# (the validation loader's during training) is reported by whichever context catches the error
_TRACKERS: weakref.WeakKeyDictionary[DataLoader, WorkerTracker] = weakref.WeakKeyDictionary()


class LoaderWorkerError(RuntimeError):
    """A data-loader worker process died; the message is one line naming the
    worker, how it ended, and the sample and file it was loading."""


class WorkerTracker:
    """Shared-memory slots in which the workers of one loader record their sample.

    Use :func:`track_workers` to make one.

    Args:
        dataloader: The loader; its ``worker_init_fn`` is wrapped.
        name: What the report calls the loader (``'train'``, ``'val'``, ...).
    """

    def __init__(self, dataloader: DataLoader, name: str) -> None:
        self.name = name
        self.dataset = getattr(dataloader, 'dataset', None)
        workers = getattr(dataloader, 'num_workers', 0)  # any iterable may stand in for a loader in a loop
        # created before any worker starts: forked workers share it, spawned ones receive it
        self.slots = multiprocessing.RawArray(ctypes.c_int64, [_NONE] * (workers * _FIELDS))
        if workers:
            dataloader.worker_init_fn = _RecordingInit(dataloader.worker_init_fn, self.slots)
            _TRACKERS[dataloader] = self

    def find(self, pid: int) -> tuple[int, int, int] | None:
        """``(worker id, sample loading, last sample finished)`` of the worker ``pid``, or None."""
        for worker in range(len(self.slots) // _FIELDS):
            base = worker * _FIELDS
            if self.slots[base + _PID] == pid:
                return worker, self.slots[base + _CURRENT], self.slots[base + _LAST]
        return None

    def pids(self) -> list[int]:
        """The pids of the workers started so far (the latest of each slot)."""
        return [pid for pid in self.slots[_PID::_FIELDS] if pid != _NONE]

    def image(self, index: int) -> str | None:
        """The image file of sample ``index``, when the dataset says (``get_data_info``)."""
        try:
            info = self.dataset.get_data_info(index)
        except Exception:  # any dataset may be tracked: a report must not fail on it
            return None
        path = info.get('img_path') if isinstance(info, dict) else None
        return str(path) if path else None


def track_workers(dataloader: DataLoader, name: str) -> WorkerTracker:
    """Make the workers of ``dataloader`` record the sample each is loading.

    Call before the loader's first iteration (workers read ``worker_init_fn``
    when they start). Samples are recorded one by one through the dataset's
    ``__getitems__`` in the worker (torch's fetcher calls it for every batch);
    a dataset whose class defines its own ``__getitems__`` is only known by pid.
    The tracker lives as long as the loader.

    Args:
        dataloader: A map-style loader (any ``num_workers``; 0 records nothing).
        name: What reports call the loader.

    Returns:
        The tracker.
    """
    return WorkerTracker(dataloader, name)


class _RecordingInit:
    """A ``worker_init_fn`` that records the worker's pid, then its samples."""

    def __init__(self, init_fn: Callable[[int], None] | None, slots) -> None:
        self.init_fn = init_fn
        self.slots = slots

    def __call__(self, worker_id: int) -> None:
        base = worker_id * _FIELDS
        self.slots[base + _PID] = os.getpid()
        self.slots[base + _CURRENT] = self.slots[base + _LAST] = _NONE
        if self.init_fn is not None:
            self.init_fn(worker_id)
        dataset = get_worker_info().dataset
        if getattr(dataset, '__getitems__', None) is None:
            # an instance attribute: the fetcher looks it up on the dataset, so only this
            # worker's copy changes, and the samples are loaded as without it; a dataset
            # that takes no attributes is loaded untracked rather than not at all
            with contextlib.suppress(AttributeError, TypeError):
                dataset.__getitems__ = _recording_getitems(dataset, self.slots, base)


def _recording_getitems(dataset, slots, base: int) -> Callable[[list], list]:
    def getitems(items: list) -> list:
        samples = []
        for item in items:
            index = _sample_index(item)
            slots[base + _CURRENT] = index
            try:
                samples.append(dataset[item])
            finally:
                slots[base + _CURRENT] = _NONE
            slots[base + _LAST] = index
        return samples

    return getitems


def _sample_index(item) -> int:
    """The dataset index of a sampler item: an int, or ``(index, seed)`` (ReproducibleSampler)."""
    if isinstance(item, tuple) and item:
        item = item[0]
    try:
        return int(item)
    except (TypeError, ValueError):
        return _UNKNOWN


def describe_worker_failure(err: BaseException) -> str | None:
    """One line for an error that a dead data-loader worker caused, else None.

    Two errors come from a worker's death: torch's ``RuntimeError`` "DataLoader
    worker (pid N) is killed by signal / exited unexpectedly", and, when the
    main process was receiving a batch whose memory the dying worker was
    handing over, a ``ConnectionError``, ``EOFError`` or ``FileNotFoundError``
    raised inside the loader (a tracked worker that ended abnormally within 2 s
    is then looked for). How the worker ended is read from the kernel
    (``waitid``, without reaping it), else from torch's message or the worker's
    process object.

    The other workers of the loader that lost one are then killed (its iterator
    is broken, and a worker left running could block the exit of the process),
    and torch's pending reports of these deaths are taken here, so that its
    SIGCHLD handler does not raise them later, wherever the process then is.

    Args:
        err: An exception raised while a loader was in use.

    Returns:
        ``"the train loader's worker 1 (pid 4242) was killed by SIGKILL ...
        while loading sample 17 (/data/img.png)"``; None when ``err`` is not
        due to a dead worker.
    """
    if not _may_be_worker_failure(err):
        return None
    with _sigchld_deferred():
        pids = _failed_pids(err)
        if not pids:
            return None
        ends = {pid: _wait_for_end(pid) for pid in pids}
        _stop_other_workers(pids)
        reports = [str(err), _take_torch_report()]
    return '; '.join(_describe_pid(pid, ends[pid] or _end_from(reports, pid, err)) for pid in pids)


def _may_be_worker_failure(err: BaseException) -> bool:
    if _FAILURE.search(str(err)):
        return True
    return isinstance(err, (ConnectionError, EOFError, FileNotFoundError)) and _raised_in_loader(err)


def _failed_pids(err: BaseException) -> list[int]:
    match = _FAILURE.search(str(err))
    if match:
        return [int(p) for p in re.findall(r'\d+', match.group(1))]
    return _abnormally_ended_workers(_SETTLE_S)


def _raised_in_loader(err: BaseException) -> bool:
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(os.path.join('torch', 'utils', 'data', 'dataloader.py')):
            return True
        tb = tb.tb_next
    return False


@contextlib.contextmanager
def _sigchld_deferred() -> Iterator[None]:
    """Without torch's SIGCHLD handler inside: it would raise in the middle of the report.

    SIG_DFL, not SIG_IGN: an ignored SIGCHLD makes the kernel reap children at once,
    and their exit status would be lost.
    """
    if not hasattr(signal, 'SIGCHLD') or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        yield
    finally:
        if previous is not None:  # None: a handler set outside Python, which cannot be put back
            signal.signal(signal.SIGCHLD, previous)


def _trackers() -> list[WorkerTracker]:
    return list(_TRACKERS.values())  # a copy: a loader collected meanwhile must not break the loop


def _tracked_pids() -> set[int]:
    return {pid for t in _trackers() for pid in t.pids()}


def _abnormally_ended_workers(wait_s: float) -> list[int]:
    """Pids of tracked workers the kernel reports killed or exited non-zero, waiting up to
    ``wait_s`` for one (a worker whose connection broke may still be exiting)."""
    deadline = time.monotonic() + wait_s
    while True:
        ended = sorted(pid for pid in _tracked_pids() if _wait_for_end(pid, 0) is not None)
        if ended or time.monotonic() >= deadline:
            return ended
        time.sleep(0.05)


def _stop_other_workers(dead: list[int]) -> None:
    """SIGKILL the running workers of the loaders that lost ``dead``, and wait for their end."""
    others = [pid for t in _trackers() if any(t.find(p) for p in dead) for pid in t.pids() if pid not in dead]
    killed = []
    for pid in others:
        if _wait_for_end(pid, 0) is None and _is_running_child(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    for pid in killed:
        _wait_for_end(pid)


def _is_running_child(pid: int) -> bool:
    if not _HAS_WAITID:
        return False
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:  # not a child of this process (reaped, or a reused pid)
        return False


def _wait_for_end(pid: int, wait_s: float = _SETTLE_S) -> str | None:
    """How the child ``pid`` ended ('was killed by SIGKILL', 'exited with code 3'), from the
    kernel, without reaping it; None if it ran on for ``wait_s``, ended well or was reaped."""
    if not _HAS_WAITID:
        return None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            status = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped already (by multiprocessing), or not a child
            return None
        if status is not None and status.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
            return _killed(_signal_name(status.si_status))
        if status is not None:
            return f'exited with code {status.si_status}' if status.si_status else None
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def _take_torch_report() -> str:
    """torch's own report of a dead worker, taken now rather than raised later by its handler."""
    try:
        _error_if_any_worker_fails()
    except RuntimeError as report:
        return str(report)
    return ''


def _describe_pid(pid: int, ended: str) -> str:
    found = next(((t, slot) for t in _trackers() if (slot := t.find(pid)) is not None), None)
    if found is None:
        return f'a data-loader worker (pid {pid}) {ended}'
    tracker, (worker, current, last) = found
    who = f"the {tracker.name} loader's worker {worker} (pid {pid}) {ended}"
    if current != _NONE:
        return f'{who} while loading {_sample(tracker, current)}'
    if last != _NONE:
        return f'{who} after loading {_sample(tracker, last)}, outside the dataset (collating or sending the batch)'
    return f'{who} before loading any sample'


def _sample(tracker: WorkerTracker, index: int) -> str:
    if index == _UNKNOWN:
        return 'a sample'
    image = tracker.image(index)
    return f'sample {index} ({image})' if image else f'sample {index}'


def _end_from(reports: list[str], pid: int, err: BaseException) -> str:
    """How ``pid`` ended, from torch's messages about it, else its process object."""
    for text in reports:
        if not re.search(rf'\bpid(?:\(s\))? (?:[\d, ]*\b)?{pid}\b', text):
            continue
        killed = _KILLED_BY.search(text)
        if killed:
            return _killed(_signal_named(killed.group(1).strip()))
        code = _EXIT_CODE.search(text)
        if code:
            return f'exited with code {code.group(1)}'
    # torch's status poll names no cause, and has reaped the process: its process
    # object, in the frame that raised, holds the exit code (negative: the signal)
    exitcode = _exit_code_from_traceback(pid, err)
    if exitcode is not None and exitcode < 0:
        return _killed(_signal_name(-exitcode))
    if exitcode is not None:
        return f'exited with code {exitcode}'
    return 'exited unexpectedly'


def _killed(name: str) -> str:
    hint = ' (the signal the out-of-memory killer sends)' if name == 'SIGKILL' else ''
    return f'was killed by {name}{hint}'


def _signal_named(description: str) -> str:
    """'SIGKILL' for strsignal's 'Killed'; the description itself when unknown."""
    for sig in signal.Signals:
        if signal.strsignal(sig) == description:
            return sig.name
    return description


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f'signal {number}'


def _exit_code_from_traceback(pid: int, err: BaseException) -> int | None:
    tb = err.__traceback__
    while tb is not None:
        for process in getattr(tb.tb_frame.f_locals.get('self'), '_workers', None) or ():
            if getattr(process, 'pid', None) == pid:
                return getattr(process, 'exitcode', None)
        tb = tb.tb_next
    return None


@contextlib.contextmanager
def report_worker_failures(then: Callable[[], str] | None = None) -> Iterator[None]:
    """Turn an error that a dead data-loader worker caused into a one-line :class:`LoaderWorkerError`.

    See :func:`describe_worker_failure` for what is recognised, and what is done
    to the loader's other workers.

    Args:
        then: Called on a failure for what follows the report (e.g. how to
            resume); added to a :class:`LoaderWorkerError` raised inside too.

    Raises:
        LoaderWorkerError: A data-loader worker died inside the block.
    """
    try:
        yield
    except LoaderWorkerError as err:
        if then is None:
            raise
        raise LoaderWorkerError(f'{err}; {then()}') from None
    except Exception as err:
        failure, line = err, None
        # torch's SIGCHLD handler raises wherever the main thread is until the report takes
        # its news; if it ran first, its error names the worker. (A constant tuple, not
        # range(): a call before the try is a point where the handler could run.)
        for _ in (1, 2, 3, 4):
            try:
                line = describe_worker_failure(failure)
                break
            except RuntimeError as late:
                if _FAILURE.search(str(late)) is None:
                    raise
                failure = late
        if line is None:
            raise
        raise LoaderWorkerError(f'{line}; {then()}' if then else line) from None


def resume_hint(runner) -> str:
    """What a stopped training run tells its user: where it stopped and how to continue."""
    config = getattr(runner.cfg, 'filename', None) or 'CONFIG'
    pointer = os.path.join(runner.work_dir, 'last_checkpoint')
    last = None
    with contextlib.suppress(OSError):
        with open(pointer) as f:
            last = f.read().strip() or None
    then = f'continues from {last}' if last else 'starts over: no checkpoint has been written yet'
    return (
        f'training stopped after iteration {runner.iter}; '
        f'`tools/train.py {config} --resume` (with the same --work-dir and --cfg-options) {then}'
    )
