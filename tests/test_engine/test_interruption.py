"""A run killed mid-epoch (SIGTERM or SIGKILL) resumes and ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO
from helpers import TINY_DEMO_OPTIONS

# 24 training images x 5 captions, batch 8: 15 iterations per epoch, 30 in 2 epochs
OPTIONS = [
    *TINY_DEMO_OPTIONS,
    'train_cfg.max_epochs=2',
    'default_hooks.checkpoint.by_epoch=False',
    'default_hooks.checkpoint.interval=5',
    'default_hooks.checkpoint.max_keep_ckpts=20',
]
OPTIONS = [o for o in OPTIONS if not o.startswith('train_cfg.max_epochs=1')]

SIGNAL_HOOK = '''
import os
import signal

from mmengine.hooks import Hook

from rsretrieval.registry import HOOKS


@HOOKS.register_module()
class SignalAtIteration(Hook):
    """Send this process a signal at the end of an iteration, as a scheduler or a user would."""

    priority = 'VERY_HIGH'

    def __init__(self, iteration, signal_name):
        self.iteration, self.signal_name = iteration, signal_name

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), getattr(signal, self.signal_name))
'''


def _config(tmp_path, name, signal_at=None):
    hooks = "[dict(type='SafeCheckpointHook'), dict(type='NonFiniteLossHook'), dict(type='RandomStateHook'), " \
            "dict(type='PreemptionHook')"  # fmt: skip
    extra = ''
    if signal_at:
        hooks += f", dict(type='SignalAtIteration', iteration={signal_at[0]}, signal_name='{signal_at[1]}')"
        extra = "custom_imports = dict(imports=['signal_hook'], allow_failed_imports=False)\n"
    path = tmp_path / f'{name}.py'
    path.write_text(f"_base_ = ['{REPO}/configs/cmpagl_demo.py']\n{extra}custom_hooks = {hooks}]\n")
    return path


def _train(config, work, demo_root, *extra, options=(), expect=0):
    # one thread: multi-threaded CPU kernels may split reductions differently from run to run
    # under load, which bitwise equality cannot tolerate (docs/reliability.md)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(config.parent), os.environ.get('PYTHONPATH', '')]),
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1',
    )
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(config), '--work-dir', str(work), *extra,
         '--cfg-options', f'data_root={demo_root}', *OPTIONS, *options],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == expect, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _final(work):
    state = torch.load(work / 'iter_30.pth', map_location='cpu', weights_only=True)['state_dict']
    scalars = sorted(work.glob('*/vis_data/scalars.json'))
    val = [json.loads(line) for f in scalars for line in f.read_text().splitlines() if '"mR"' in line]
    return state, val[-1]


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory, demo_root):
    tmp = tmp_path_factory.mktemp('uninterrupted')
    _train(_config(tmp, 'plain'), tmp / 'work', demo_root)
    return _final(tmp / 'work')


@pytest.mark.parametrize(
    ('signal_name', 'at', 'resume_from', 'workers'),
    [('SIGTERM', 12, 12, 0), ('SIGKILL', 22, 20, 2)],
    ids=['sigterm', 'sigkill'],
)
def test_killed_run_resumes_to_the_same_weights_and_metrics(
    tmp_path, demo_root, uninterrupted, signal_name, at, resume_from, workers
):
    (tmp_path / 'signal_hook.py').write_text(SIGNAL_HOOK)
    work = tmp_path / 'work'
    expect = 143 if signal_name == 'SIGTERM' else -9
    out = _train(_config(tmp_path, 'killed', (at, signal_name)), work, demo_root, expect=expect)
    if signal_name == 'SIGTERM':
        assert 'SIGTERM received: saved iter_12.pth after iteration 12' in out
    assert (work / 'last_checkpoint').read_text().strip().endswith(f'iter_{resume_from}.pth')
    assert not (work / 'iter_30.pth').exists()
    # resume mid-epoch (12 and 20 are inside epochs 1 and 2), the SIGKILL case with 2 loader workers
    loader = [f'train_dataloader.num_workers={workers}', f'train_dataloader.persistent_workers={workers > 0}']
    out = _train(_config(tmp_path, 'resume'), work, demo_root, '--resume', options=loader)
    assert f'after its first {resume_from % 15} batches' in out
    state, val = _final(work)
    reference_state, reference_val = uninterrupted
    assert state.keys() == reference_state.keys()
    different = [k for k in state if not torch.equal(state[k], reference_state[k])]
    worst = max(((state[k].float() - reference_state[k].float()).abs().max().item() for k in different), default=0)
    assert not different, (
        f'{len(different)} tensors differ, by up to {worst}: {different[:5]}; mR {val} vs {reference_val}'
    )
    assert val['mR'] == reference_val['mR'] and val['step'] == reference_val['step']
