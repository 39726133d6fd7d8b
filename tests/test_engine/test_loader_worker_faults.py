"""A data-loader worker killed mid-epoch is reported in one line naming the sample and file
it was loading, the run stops within seconds (never hangs), and ``--resume`` finishes it."""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from conftest import REPO
from helpers import TINY_DEMO_OPTIONS
from torch.utils.data import DataLoader, Dataset, get_worker_info

from rsretrieval.datasets import ReproducibleSampler
from rsretrieval.engine.loops.loader_faults import LoaderWorkerError, report_worker_failures, track_workers

BATCH = 4
# a stuck loader would otherwise stall the whole test session
HANG_GUARD_S = 60


class Dying(Dataset):
    """64 items; in a worker, item ``victim`` ends its process (``how``: 'kill' or 'exit')."""

    def __init__(self, victim: int, how: str) -> None:
        self.victim, self.how = victim, how

    def __len__(self) -> int:
        return 64

    def get_data_info(self, idx: int) -> dict:
        return dict(img_path=f'/images/{idx:03d}.png')

    def __getitem__(self, idx: int) -> torch.Tensor:
        if idx == self.victim and get_worker_info() is not None:
            if self.how == 'kill':
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(3)
        return torch.tensor(idx)


def _iterate(loader: DataLoader, epochs: int = 2) -> LoaderWorkerError:
    faulthandler.dump_traceback_later(HANG_GUARD_S, exit=True)
    try:
        with pytest.raises(LoaderWorkerError) as caught, report_worker_failures(lambda: 'resume here'):
            for _ in range(epochs):
                for _ in loader:
                    pass
    finally:
        faulthandler.cancel_dump_traceback_later()
    return caught.value


@pytest.mark.parametrize(
    ('how', 'persistent', 'ended'),
    [('kill', True, 'was killed by SIGKILL'), ('exit', False, 'exited with code 3')],
    ids=['sigkill-persistent', 'exit-code'],
)
def test_worker_death_names_the_worker_sample_and_file(how, persistent, ended):
    # sample 41 is in batch 10, loaded by worker 0 (batches alternate between the two workers)
    loader = DataLoader(Dying(41, how), batch_size=BATCH, num_workers=2, persistent_workers=persistent)
    tracker = track_workers(loader, 'train')
    start = time.monotonic()
    err = _iterate(loader)
    message = str(err)
    assert "the train loader's worker 0 (pid " in message, message
    assert ended in message and 'while loading sample 41 (/images/041.png); resume here' in message
    assert '\n' not in message and err.__cause__ is None and err.__suppress_context__
    assert time.monotonic() - start < 10  # torch's SIGCHLD handler at once, or its 5 s poll
    # the loader's other worker, persistent or not, is stopped: nothing is left to block the exit
    assert len(tracker.pids()) == 2 and not any(_running(pid) for pid in tracker.pids())


def _running(pid: int) -> bool:
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:  # reaped
        return False


def _collate_killing_on_41(samples: list) -> torch.Tensor:
    if 41 in [int(s) for s in samples] and get_worker_info() is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    return torch.stack(samples)


def test_worker_killed_between_samples_names_the_last_one_it_loaded():
    loader = DataLoader(Dying(-1, 'kill'), batch_size=BATCH, num_workers=2, collate_fn=_collate_killing_on_41)
    track_workers(loader, 'train')
    message = str(_iterate(loader, epochs=1))
    assert 'after loading sample 43 (/images/043.png), outside the dataset (collating or sending the batch)' in message


def test_worker_death_seen_by_torchs_status_poll_is_reported_too(tmp_path):
    # without torch's SIGCHLD handler only its poll (every 5 s) notices the death and names
    # no cause: the signal comes from the worker's process object; in a fresh process,
    # since the handler is process-wide
    script = tmp_path / 'poll.py'
    script.write_text(
        textwrap.dedent(f"""
        import os, signal
        import torch.utils.data._utils.signal_handling as handling
        from torch.utils.data import DataLoader, get_worker_info
        from rsretrieval.engine.loops.loader_faults import report_worker_failures, track_workers

        class Dying:
            def __len__(self):
                return 64

            def get_data_info(self, idx):
                return dict(img_path=f'/images/{{idx:03d}}.png')

            def __getitem__(self, idx):
                if idx == 41 and get_worker_info() is not None:
                    os.kill(os.getpid(), signal.SIGKILL)
                return idx

        handling._SIGCHLD_handler_set = True  # torch then never installs it
        loader = DataLoader(Dying(), batch_size={BATCH}, num_workers=2, persistent_workers=True)
        track_workers(loader, 'val')
        try:
            with report_worker_failures():
                for _ in loader:
                    pass
        except Exception as err:
            print(type(err).__name__, err)
        """)
    )
    proc = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert proc.stdout.startswith("LoaderWorkerError the val loader's worker 0 (pid "), proc.stdout + proc.stderr
    assert 'was killed by SIGKILL' in proc.stdout and 'while loading sample 41 (/images/041.png)' in proc.stdout


def test_tracked_workers_load_the_same_batches():
    data = Dying(-1, 'kill')
    plain = DataLoader(data, batch_size=BATCH, num_workers=2, sampler=range(63, -1, -1))
    tracked = DataLoader(data, batch_size=BATCH, num_workers=2, sampler=range(63, -1, -1))
    track_workers(tracked, 'train')
    assert (
        [b.tolist() for b in tracked]
        == [b.tolist() for b in plain]
        == [list(range(i, i - BATCH, -1)) for i in range(63, -1, -BATCH)]
    )


def test_errors_not_from_a_worker_pass_through_unchanged():
    with pytest.raises(RuntimeError, match='^CUDA out of memory$'), report_worker_failures(lambda: 'never'):
        raise RuntimeError('CUDA out of memory')


# ------------------------------------------------------------------ a training run, end to end
KILLER = '''
import os
import signal

from torch.utils.data import get_worker_info

from rsretrieval.registry import TRANSFORMS


@TRANSFORMS.register_module()
class KillWorkerOnce:
    """In a loader worker, SIGKILL the process on sample ``sample_idx``, as the OOM killer would;
    first writing the image path into ``marker``, whose presence spares later runs."""

    def __init__(self, sample_idx, marker):
        self.sample_idx, self.marker = sample_idx, marker

    def __call__(self, results):
        if results['sample_idx'] == self.sample_idx and get_worker_info() and not os.path.exists(self.marker):
            with open(self.marker, 'w') as f:
                f.write(results['img_path'])
            os.kill(os.getpid(), signal.SIGKILL)
        return results
'''

# 24 training images x 5 captions, batch 8: 15 iterations; a checkpoint every 5
OPTIONS = [
    *TINY_DEMO_OPTIONS,
    'train_dataloader.num_workers=2',
    'train_dataloader.persistent_workers=True',
    'default_hooks.checkpoint.by_epoch=False',
    'default_hooks.checkpoint.interval=5',
]
# the first sample of batch 13: sent to a worker as iteration 9 starts (4 batches are in flight),
# after the iteration-5 checkpoint
VICTIM_POSITION = 12 * 8
TRAIN_SCRIPT = 'tools/train.py'


def _victim() -> int:
    """The dataset index at ``VICTIM_POSITION`` of epoch 1 (seed 0, as the run draws it)."""
    sampler = ReproducibleSampler(list(range(120)), shuffle=True, seed=0)
    return list(sampler)[VICTIM_POSITION][0]


def _train(tmp_path, demo_root, *extra, timeout):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get('PYTHONPATH', '')]),
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1',
    )
    return subprocess.run(
        [sys.executable, TRAIN_SCRIPT, str(tmp_path / 'killer.py'), '--work-dir', str(tmp_path / 'work'), *extra,
         '--cfg-options', f'data_root={demo_root}', *OPTIONS],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_training_stops_in_one_line_naming_the_file_a_killed_worker_was_loading(tmp_path, demo_root):
    marker = tmp_path / 'killed_on'
    (tmp_path / 'kill_worker_plugin.py').write_text(KILLER)
    (tmp_path / 'killer.py').write_text(
        textwrap.dedent(f"""
        _base_ = ['{REPO}/configs/cmpagl_demo.py']
        custom_imports = dict(imports=['kill_worker_plugin'], allow_failed_imports=False)
        train_dataloader = dict(dataset=dict(pipeline=[
            dict(type='LoadImage'),
            dict(type='RandomResizedCrop', size=32, scale=(0.5, 1.0)),
            dict(type='RandomHorizontalFlip', prob=0.5, swap_sides=True),
            dict(type='KillWorkerOnce', sample_idx={_victim()}, marker='{marker}'),
            dict(type='PackRetrievalInputs'),
        ]))
        """)
    )
    proc = _train(tmp_path, demo_root, timeout=150)
    ended = time.time()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert marker.exists(), out[-3000:]
    # the stop follows the kill within seconds: torch's SIGCHLD handler, at worst its 5 s poll
    assert ended - marker.stat().st_mtime < 30, out[-3000:]
    assert 'Traceback' not in out, out[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    image = marker.read_text()
    assert line.startswith("train.py: error: the train loader's worker "), line
    killed = 'was killed by SIGKILL (the signal the out-of-memory killer sends)'
    assert f'{killed} while loading sample {_victim()} ({image});' in line
    last = (tmp_path / 'work' / 'last_checkpoint').read_text().strip()
    assert f'--resume` (with the same --work-dir and --cfg-options) continues from {last}' in line
    # the marker spares the worker this time: the run resumes mid-epoch and finishes
    proc = _train(tmp_path, demo_root, '--resume', timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert f'after its first {int(last.rsplit("_", 1)[1].split(".")[0])} batches' in out
    assert (tmp_path / 'work' / 'iter_15.pth').exists()
