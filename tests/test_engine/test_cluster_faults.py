"""What clusters do to a job, on CPU processes (gloo, loopback): SIGTERM to the whole process
group, a rank killed with SIGKILL, a rank that stops (SIGSTOP). Each run stops cleanly or is
restarted by torchrun, and ends with the same weights as a run that never stopped.

The recovery times (fault to training running again) are printed; run with ``-s`` to see them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from conftest import REPO
from helpers import TINY_DEMO_OPTIONS

from rsretrieval.engine.collective_faults import collective_failure
from rsretrieval.engine.stop_signals import leave_stop_signals_to_main_process

# 24 training images x 5 captions, batch 8: 15 iterations with one process, 8 with two;
# a checkpoint every 5 iterations is what a restart resumes from
OPTIONS = [
    *TINY_DEMO_OPTIONS,
    'default_hooks.checkpoint.by_epoch=False',
    'default_hooks.checkpoint.interval=5',
    'default_hooks.checkpoint.max_keep_ckpts=20',
]
WORKERS = ['train_dataloader.num_workers=2', 'train_dataloader.persistent_workers=True']
RUN_TIMEOUT_S = 300  # any run that has not ended by then has hung: its process group is killed
PG_TIMEOUT_S = 20  # the process-group timeout of the SIGSTOP test

FAULT_HOOK = '''
import os
import signal
import subprocess
import time

from mmengine.dist import get_rank
from mmengine.hooks import Hook

from rsretrieval.registry import HOOKS


@HOOKS.register_module()
class FaultAtIteration(Hook):
    """At the end of an iteration of the first attempt, on one rank: what a cluster does to a job."""

    priority = 'VERY_HIGH'  # before PreemptionHook's all-reduce

    def __init__(self, iteration, fault, rank=0):
        self.iteration, self.fault, self.rank = iteration, fault, rank

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        first_attempt = os.environ.get('TORCHELASTIC_RESTART_COUNT', '0') == '0'
        if runner.iter + 1 != self.iteration or get_rank() != self.rank or not first_attempt:
            return
        print(f'FAULT {self.fault} at {time.time():.3f}', flush=True)
        if self.fault != 'group_sigterm':
            os.kill(os.getpid(), getattr(signal, self.fault))
            return
        # from outside the group, as Slurm or `kill -- -PGID` would; under torchrun, torchrun's
        # group: torchrun forwards the signal to each process's group, loader workers included
        launched = 'TORCHELASTIC_RUN_ID' in os.environ
        group = os.getpgid(os.getppid() if launched else 0)
        subprocess.run(['kill', '-TERM', '--', f'-{group}'], start_new_session=True, check=True)
        time.sleep(1)  # the step goes on while every process of the group receives it
'''


@dataclass
class Run:
    """A finished command: exit status and its output lines with their arrival times."""

    returncode: int
    lines: list[tuple[float, str]] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    @property
    def out(self) -> str:
        return '\n'.join(line for _, line in self.lines)

    def first(self, pattern: str, after: float = 0.0) -> tuple[float, str]:
        """The first line matching ``pattern`` that arrived after ``after``: (time, line)."""
        for at, line in self.lines:
            if at > after and re.search(pattern, line):
                return at, line
        raise AssertionError(f'no line matches {pattern!r}:\n{self.out[-4000:]}')

    def fault_time(self) -> float:
        return float(self.first(r'^FAULT ')[1].split(' at ')[1])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (torchrun's workers run in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path('/proc').glob('[0-9]*/stat'):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(')', 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def _launch(cmd: list[str], config: Path) -> Run:
    """Run ``cmd`` in a process group of its own, timing each line of its output; a run that
    outlives ``RUN_TIMEOUT_S`` is killed with every process below it, a stopped one too."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(config.parent), os.environ.get('PYTHONPATH', '')]),
        PYTHON=sys.executable,
        PORT=str(_free_port()),
        OMP_NUM_THREADS='1',  # bitwise equality needs single-thread kernels (docs/reliability.md)
        MKL_NUM_THREADS='1',
    )
    run = Run(returncode=0, started=time.time())
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    hung = threading.Event()

    def _kill() -> None:
        hung.set()
        for pid in [*_descendants(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    guard = threading.Timer(RUN_TIMEOUT_S, _kill)
    guard.start()
    try:
        for line in proc.stdout:
            run.lines.append((time.time(), line.rstrip('\n')))
        run.returncode = proc.wait()
        run.ended = time.time()
    finally:
        guard.cancel()
    assert not hung.is_set(), f'killed after {RUN_TIMEOUT_S} s:\n{run.out[-4000:]}'
    return run


def _config(tmp_path: Path, name: str, fault: str | None = None, iteration: int = 0, rank: int = 0) -> Path:
    hooks = "[dict(type='SafeCheckpointHook'), dict(type='NonFiniteLossHook'), dict(type='RandomStateHook'), " \
            "dict(type='PreemptionHook')"  # fmt: skip
    extra = ''
    if fault:
        (tmp_path / 'cluster_fault_hook.py').write_text(FAULT_HOOK)
        hooks += f", dict(type='FaultAtIteration', iteration={iteration}, fault='{fault}', rank={rank})"
        extra = "custom_imports = dict(imports=['cluster_fault_hook'], allow_failed_imports=False)\n"
    path = tmp_path / f'{name}.py'
    path.write_text(f"_base_ = ['{REPO}/configs/cmpagl_demo.py']\n{extra}custom_hooks = {hooks}]\n")
    return path


def _train(config: Path, work: Path, demo_root: Path, *extra: str, processes: int = 1, options=()) -> Run:
    args = ['--work-dir', str(work), *extra, '--cfg-options', f'data_root={demo_root}', *OPTIONS, *options]
    if processes == 1:
        return _launch([sys.executable, 'tools/train.py', str(config), *args], config)
    return _launch(['bash', 'tools/dist_train.sh', str(config), str(processes), *args], config)


def _assert_same_weights(path: Path, reference: Path) -> None:
    state = torch.load(path, map_location='cpu', weights_only=True)['state_dict']
    expected = torch.load(reference, map_location='cpu', weights_only=True)['state_dict']
    assert state.keys() == expected.keys()
    different = [k for k in state if not torch.equal(state[k], expected[k])]
    worst = max(((state[k].float() - expected[k].float()).abs().max().item() for k in different), default=0)
    assert not different, f'{len(different)} tensors differ, by up to {worst}: {different[:5]}'


def _report(what: str, seconds: float) -> None:
    print(f'\n[recovery] {what}: {seconds:.1f} s', flush=True)


@pytest.fixture(scope='module')
def one_process(tmp_path_factory, demo_root) -> Path:
    """The final checkpoint of an uninterrupted one-process run."""
    tmp = tmp_path_factory.mktemp('one_process')
    run = _train(_config(tmp, 'plain'), tmp / 'work', demo_root)
    assert run.returncode == 0, run.out[-4000:]
    return tmp / 'work' / 'iter_15.pth'


@pytest.fixture(scope='module')
def two_processes(tmp_path_factory, demo_root) -> Path:
    """The final checkpoint of an uninterrupted two-process run (torchrun, gloo)."""
    tmp = tmp_path_factory.mktemp('two_processes')
    run = _train(_config(tmp, 'plain'), tmp / 'work', demo_root, processes=2)
    assert run.returncode == 0, run.out[-4000:]
    return tmp / 'work' / 'iter_8.pth'


def test_process_group_sigterm_with_loader_workers_saves_and_resumes_exactly(tmp_path, demo_root, one_process):
    work = tmp_path / 'work'
    run = _train(_config(tmp_path, 'signalled', 'group_sigterm', 7), work, demo_root, options=WORKERS)
    # the workers leave the signal to the main process: no "DataLoader worker (pid ...) is killed"
    assert run.returncode == 143, run.out[-4000:]
    assert 'Traceback' not in run.out, run.out[-4000:]
    assert 'SIGTERM received: saved iter_7.pth after iteration 7 and stopped' in run.out
    assert (work / 'last_checkpoint').read_text().strip().endswith('iter_7.pth')
    resumed = _train(_config(tmp_path, 'resume'), work, demo_root, '--resume', options=WORKERS)
    assert resumed.returncode == 0, resumed.out[-4000:]
    assert 'after its first 7 batches' in resumed.out
    _assert_same_weights(work / 'iter_15.pth', one_process)
    _report('SIGTERM to the group, one process: signal to exit', run.ended - run.fault_time())
    _report('  --resume: start to training again', resumed.first(r'Epoch\(train\)')[0] - resumed.started)


def test_process_group_sigterm_under_torchrun_saves_and_resumes_exactly(tmp_path, demo_root, two_processes):
    work = tmp_path / 'work'
    run = _train(_config(tmp_path, 'signalled', 'group_sigterm', 6), work, demo_root, processes=2, options=WORKERS)
    # torchrun forwards SIGTERM to each process's group; every rank stops after the same
    # iteration, and torchrun exits with 128 + 15 instead of its own traceback
    assert run.returncode == 143, run.out[-4000:]
    assert 'Traceback' not in run.out, run.out[-4000:]
    assert 'SIGTERM received: saved iter_6.pth after iteration 6 and stopped' in run.out
    assert (work / 'last_checkpoint').read_text().strip().endswith('iter_6.pth')
    resumed = _train(_config(tmp_path, 'resume'), work, demo_root, '--resume', processes=2, options=WORKERS)
    assert resumed.returncode == 0, resumed.out[-4000:]
    assert f'resuming from {work / "iter_6.pth"}' in resumed.out
    _assert_same_weights(work / 'iter_8.pth', two_processes)
    _report("SIGTERM to torchrun's group, two processes: signal to exit", run.ended - run.fault_time())
    _report('  --resume: start to training again', resumed.first(r'Epoch\(train\)')[0] - resumed.started)


def test_elastic_restart_after_sigkill_of_a_rank_ends_with_the_same_weights(tmp_path, demo_root, two_processes):
    work = tmp_path / 'work'
    run = _train(_config(tmp_path, 'killed', 'SIGKILL', 7, rank=1), work, demo_root, processes=2)
    assert run.returncode == 0, run.out[-4000:]
    fault = run.fault_time()
    # rank 0 says in one line why it stopped; torchrun restarts both; the restart resumes by itself
    _, line = run.first(r'rank 0 of 2: .* lost its connection in iteration \d+: rank 1 has ended')
    print(f'\n{line}')
    at, _ = run.first(rf'train\.py: torchrun restarted the run \(restart 1 of 3\): resuming from {work}/iter_5\.pth')
    running, _ = run.first(r'Epoch\(train\)', after=at)
    assert 'Resuming epoch 1 after its first 5 batches' in run.out
    _assert_same_weights(work / 'iter_8.pth', two_processes)
    _report('SIGKILL of rank 1: fault to training again', running - fault)


def test_sigstop_of_a_rank_times_out_and_restarts_with_the_same_weights(tmp_path, demo_root, two_processes):
    work = tmp_path / 'work'
    config = _config(tmp_path, 'stopped', 'SIGSTOP', 7, rank=1)
    timeout = [f'env_cfg.dist_cfg.timeout={PG_TIMEOUT_S}']
    run = _train(config, work, demo_root, processes=2, options=timeout)
    assert run.returncode == 0, run.out[-4000:]
    fault = run.fault_time()
    # rank 0 waits PG_TIMEOUT_S in its collective, says so in one line, exits; torchrun then stops
    # the stopped rank (SIGTERM stays pending, SIGKILL after its 30 s grace) and restarts both
    reported, line = run.first(rf'rank 0 of 2: .* timed out after {PG_TIMEOUT_S} s .*: rank 1 stopped responding')
    assert PG_TIMEOUT_S - 5 <= reported - fault <= PG_TIMEOUT_S + 20, (reported - fault, line)
    at, _ = run.first(rf'train\.py: torchrun restarted the run \(restart 1 of 3\): resuming from {work}/iter_5\.pth')
    running, _ = run.first(r'Epoch\(train\)', after=at)
    _assert_same_weights(work / 'iter_8.pth', two_processes)
    print(f'\n{line}')
    _report(f'SIGSTOP of rank 1: fault to the timeout report (timeout {PG_TIMEOUT_S} s)', reported - fault)
    _report('SIGSTOP of rank 1: fault to training again', running - fault)


def test_process_group_sigterm_stops_evaluation_in_one_line(tmp_path, tiny_demo_checkpoint):
    # before the second batch of test images (the evaluation loops call before_test_iter only)
    hook = FAULT_HOOK.replace(
        'def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None)',
        'def before_test_iter(self, runner, batch_idx, data_batch=None)',
    )
    hook = hook.replace('runner.iter + 1', 'batch_idx')
    (tmp_path / 'cluster_fault_hook.py').write_text(hook)
    config = tmp_path / 'evaluated.py'
    hooks = "[dict(type='FaultAtIteration', iteration=1, fault='group_sigterm')]"
    config.write_text(
        f"_base_ = ['{REPO}/configs/cmpagl_demo.py']\n"
        "custom_imports = dict(imports=['cluster_fault_hook'], allow_failed_imports=False)\n"
        f'custom_hooks = {hooks}\n'
    )
    ckpt, cli = tiny_demo_checkpoint
    loader = ['test_dataloader.num_workers=2', 'test_dataloader.batch_size=2']
    cmd = [sys.executable, 'tools/test.py', str(config), str(ckpt), '--work-dir', str(tmp_path / 'w'), *cli, *loader]
    run = _launch(cmd, config)
    assert run.returncode == 143, run.out[-4000:]
    assert 'Traceback' not in run.out, run.out[-4000:]
    assert 'test.py: SIGTERM received: evaluation stopped' in run.out


def test_stop_signal_helpers(monkeypatch):
    """The loader wrapper keeps the loader's own worker_init_fn; the collective report names the operation."""
    from torch.utils.data import DataLoader

    loader = DataLoader(list(range(4)), num_workers=2, worker_init_fn=print)
    assert leave_stop_signals_to_main_process(loader) and leave_stop_signals_to_main_process(loader)
    assert loader.worker_init_fn.args == (('SIGTERM', 'SIGINT'), print)  # wrapped once
    assert not leave_stop_signals_to_main_process(DataLoader(list(range(4))))
    monkeypatch.setenv('WORLD_SIZE', '2')
    err = RuntimeError('[third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 20000ms for recv')
    assert collective_failure(err, iteration=9).startswith(
        'rank 0 of 2: a collective operation timed out after 20 s (env_cfg.dist_cfg.timeout) in iteration 9: '
        'rank 1 stopped responding'
    )
    assert collective_failure(RuntimeError('DataLoader timed out after 5 seconds')) is None
