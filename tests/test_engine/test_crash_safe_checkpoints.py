"""Checkpoints survive a crash while they are written: atomic saves, the best never lost,
resume past a torn file, a full disk reported in one line."""

from __future__ import annotations

import errno
import hashlib
import inspect
import os
import resource
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO
from helpers import TINY_DEMO_OPTIONS, tiny_runner_cfg
from mmengine.runner import Runner

from rsretrieval.utils import CheckpointWriteError, atomic_write, find_resumable_checkpoint

OPTIONS = [o for o in TINY_DEMO_OPTIONS if not o.startswith('train_cfg.max_epochs')]


# --------------------------------------------------------------------------- atomic write
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    target.write_bytes(b'old complete checkpoint')

    real_open = open

    class FullDisk:
        def __init__(self, path, mode):
            self.f = real_open(path, mode)

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, 'No space left on device')

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr('rsretrieval.utils.atomic_files.open', FullDisk, raising=False)
    with pytest.raises(CheckpointWriteError) as info:
        atomic_write(target, b'x' * 10_000)
    message = str(info.value)
    assert str(target) in message and '10,000 bytes' in message and 'free on its device' in message
    assert 'No space left on device' in message
    assert target.read_bytes() == b'old complete checkpoint'
    assert [p.name for p in tmp_path.iterdir()] == ['epoch_1.pth']


def test_mmengine_saves_are_atomic_inside_the_block_and_plain_outside(tmp_path, monkeypatch):
    from mmengine.fileio import LocalBackend, get_file_backend
    from mmengine.runner.checkpoint import save_checkpoint

    from rsretrieval.engine import AtomicLocalBackend, atomic_local_saves

    renames = []
    real = os.replace
    monkeypatch.setattr(os, 'replace', lambda a, b: renames.append(b) or real(a, b))
    cached = get_file_backend(str(tmp_path), enable_singleton=True)  # mmengine caches it per prefix
    with atomic_local_saves():
        assert isinstance(get_file_backend(str(tmp_path), enable_singleton=True), AtomicLocalBackend)
        with atomic_local_saves():  # nested: still atomic, and restored to atomic
            save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(tmp_path / 'x.pth'))
        save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(tmp_path / 'y.pth'))
    assert renames == [tmp_path / 'x.pth', tmp_path / 'y.pth']
    assert torch.load(tmp_path / 'x.pth', weights_only=True)['state_dict']['w'].sum() == 3
    assert type(get_file_backend(str(tmp_path))) is LocalBackend  # mmengine's own again
    assert get_file_backend(str(tmp_path), enable_singleton=True) is cached
    save_checkpoint({'state_dict': {}}, str(tmp_path / 'z.pth'))
    assert renames == [tmp_path / 'x.pth', tmp_path / 'y.pth']


def test_the_atomic_hook_has_its_own_name_and_checkpoint_hook_stays_mmengines():
    from mmengine.hooks import CheckpointHook

    from rsretrieval.engine import AtomicCheckpointHook
    from rsretrieval.registry import HOOKS

    assert HOOKS.get('AtomicCheckpointHook') is AtomicCheckpointHook
    assert 'CheckpointHook' not in HOOKS.module_dict
    assert type(HOOKS.build(dict(type='CheckpointHook', interval=1))) is CheckpointHook


# mmengine 0.10.7's source of the CheckpointHook methods AtomicCheckpointHook builds on:
# _save_checkpoint_with_step is copied (reordered), _save_best_checkpoint is wrapped and relies
# on its removals going through self.file_backend
MMENGINE_SOURCES = {
    '_save_checkpoint_with_step': 'cdbc1b54c7c88d9525ab025a9d51a3d3be6e6e36396c0f1151ecf51281fd3482',
    '_save_best_checkpoint': '8e1e477297ea08d7125b641c662fc44f5023556b72059986b043b4f147e03f26',
}


@pytest.mark.parametrize('method', sorted(MMENGINE_SOURCES))
def test_the_mmengine_methods_the_atomic_hook_builds_on_are_unchanged(method):
    from mmengine.hooks import CheckpointHook

    digest = hashlib.sha256(inspect.getsource(getattr(CheckpointHook, method)).encode()).hexdigest()
    assert digest == MMENGINE_SOURCES[method], (
        f'mmengine.hooks.CheckpointHook.{method} changed in the installed mmengine: re-check '
        f'rsretrieval/engine/hooks/atomic_checkpoint_hook.py against its new source, then record {digest} here'
    )


# ------------------------------------------------------------------------- best checkpoint
def test_the_new_best_is_written_before_the_old_one_is_removed(tmp_path, demo_root):
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root), max_epochs=1)
    cfg['default_hooks']['checkpoint'] = dict(type='AtomicCheckpointHook', interval=1, save_best='mR', rule='greater')
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks if type(h).__name__ == 'AtomicCheckpointHook')
    old_best = hook.best_ckpt_path
    assert os.path.isfile(old_best)
    seen = []
    save = runner.save_checkpoint

    def spy(out_dir, filename, *args, **kwargs):
        seen.append((filename, os.path.isfile(old_best)))
        return save(out_dir, filename, *args, **kwargs)

    runner.save_checkpoint = spy
    runner.train_loop._epoch += 1  # a later epoch: another best file name
    hook._save_best_checkpoint(runner, {'mR': 1000.0})
    best_writes = [present for name, present in seen if name.startswith('best_')]
    assert best_writes == [True]  # the previous best still existed while the new one was written
    assert os.path.isfile(hook.best_ckpt_path) and hook.best_ckpt_path != old_best
    assert not os.path.exists(old_best)  # removed afterwards


# -------------------------------------------------------------------- crashes in a real run
def _train(work, *extra, limit=None, env=None, check=True):
    def preexec():
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    cmd = [sys.executable, 'tools/train.py', 'configs/cmpagl_demo.py', '--work-dir', str(work), *extra]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, preexec_fn=preexec,
                          env={**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})})  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _loadable(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def test_a_full_disk_stops_training_in_one_line_and_resume_still_works(tmp_path, demo_root):
    work = tmp_path / 'work'
    options = ['--cfg-options', f'data_root={demo_root}', *OPTIONS, 'default_hooks.checkpoint.max_keep_ckpts=1']
    _train(work, *options, 'train_cfg.max_epochs=1')
    first = work / 'epoch_1.pth'
    best = next(work.glob('best_*.pth'))
    size = first.stat().st_size
    # epoch 2 cannot be saved: the file size limit is half a checkpoint
    proc = _train(work, '--resume', *options, 'train_cfg.max_epochs=2', limit=size // 2, check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if 'error:' in line]
    assert len(errors) == 1 and 'could not write' in errors[0] and 'epoch_2.pth' in errors[0]
    assert 'bytes' in errors[0] and 'nothing written before was changed' in errors[0]
    assert _loadable(first) and _loadable(best)  # the previous periodic and best checkpoints
    assert (work / 'last_checkpoint').read_text().strip() == str(first)
    assert not list(work.glob('.*.tmp-*'))  # the temporary file is gone
    # the same command without the limit continues from epoch 1
    out = _train(work, '--resume', *options, 'train_cfg.max_epochs=2')
    assert 'Epoch(train) [2]' in out.stdout + out.stderr and _loadable(work / 'epoch_2.pth')


def test_resume_passes_over_a_torn_newest_checkpoint(tmp_path, demo_root):
    work = tmp_path / 'work'
    options = ['--cfg-options', f'data_root={demo_root}', *OPTIONS, 'default_hooks.checkpoint.max_keep_ckpts=3']
    _train(work, *options, 'train_cfg.max_epochs=2')
    newest = work / 'epoch_2.pth'
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # what an in-place writer leaves after a crash
    time.sleep(0.01)
    path, skipped = find_resumable_checkpoint(work)
    assert path == str(work / 'epoch_1.pth') and 'incomplete' in skipped[0]
    proc = _train(work, '--resume', *options, 'train_cfg.max_epochs=2')
    out = proc.stdout + proc.stderr
    assert 'passed over checkpoint is incomplete' in out and 'resuming from' in out and 'epoch_1.pth' in out
    assert _loadable(work / 'epoch_2.pth')  # epoch 2 trained again and saved whole


SLOW_SAVE = """
import os, runpy, sys, time, types
import rsretrieval.utils.atomic_files as c
real = os.replace
def slow_replace(src, dst):
    if str(dst).endswith('epoch_2.pth'):
        open(os.environ['SAVE_MARKER'], 'w').close()
        time.sleep(60)
    real(src, dst)
fake_os = types.SimpleNamespace(**vars(os))
fake_os.replace = slow_replace
c.os = fake_os  # the checkpoint module's os: its saves of epoch_2.pth stall before the rename
sys.argv = ['tools/train.py', *sys.argv[1:]]
runpy.run_path('tools/train.py', run_name='__main__')
"""


def test_kill_9_during_a_save_keeps_the_previous_checkpoints(tmp_path, demo_root):
    work = tmp_path / 'work'
    marker = tmp_path / 'saving'
    options = ['--cfg-options', f'data_root={demo_root}', *OPTIONS, 'default_hooks.checkpoint.max_keep_ckpts=1']
    cmd = [sys.executable, '-c', SLOW_SAVE, 'configs/cmpagl_demo.py', '--work-dir', str(work), *options,
           'train_cfg.max_epochs=2']  # fmt: skip
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'SAVE_MARKER': str(marker)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert marker.exists(), 'the run never reached the save of epoch 2'
    proc.kill()  # SIGKILL in the middle of writing epoch_2.pth
    proc.wait()
    assert not (work / 'epoch_2.pth').exists() and list(work.glob('.epoch_2.pth.tmp-*'))
    assert _loadable(work / 'epoch_1.pth') and _loadable(next(work.glob('best_*.pth')))
    path, _ = find_resumable_checkpoint(work)
    assert path == str(work / 'epoch_1.pth')
    out = _train(work, '--resume', *options, 'train_cfg.max_epochs=2')
    assert _loadable(work / 'epoch_2.pth') and 'Epoch(train) [2]' in out.stdout + out.stderr
    assert 'left by a save that was killed' in out.stdout and not list(work.glob('.*.tmp-*'))
