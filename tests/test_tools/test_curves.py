"""Training curves from a work dir, TensorBoard as an option."""

import json
import subprocess
import sys

import pytest
from conftest import REPO
from helpers import tiny_runner_cfg
from mmengine.runner import Runner

from rsretrieval.analysis import NoLogsError, plot_curves, read_scalars, smooth
from rsretrieval.utils import add_tensorboard


def _write(folder, rows):
    path = folder / 'vis_data' / 'scalars.json'
    path.parent.mkdir(parents=True)
    path.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    return path


def test_resumed_and_running_runs_read_as_one_history(tmp_path):
    run = tmp_path / 'run'
    first = [{'loss': 3.0 - i / 10, 'loss_itc': 1.0, 'lr': 1e-4, 'iter': i, 'epoch': 1, 'step': i} for i in (1, 2, 3)]
    first.append({'mR': 10.0, 'i2t_R@1': 2.0, 'step': 1})
    _write(run / '20260101_000000', first)
    resumed = [{'loss': 9.0, 'iter': 3, 'epoch': 1, 'step': 3}, {'loss': 2.0, 'iter': 4, 'epoch': 2, 'step': 4}]
    path = _write(run / '20260101_010000', resumed + [{'mR': 12.5, 'step': 2}])
    with open(path, 'a') as f:
        f.write('{"loss": 1.5, "it')  # a line still being written
    _write(run / '20260101_020000', [{'mR': 99.0, 'step': 0}])  # tools/test.py: not part of the curves
    scalars = read_scalars(run)
    assert scalars.train['loss'][0].tolist() == [1, 2, 3, 4]
    assert scalars.train['loss'][1].tolist() == [2.9, 2.8, 9.0, 2.0]  # step 3: the later start wins
    assert scalars.val['mR'][0].tolist() == [1, 2] and scalars.best_epoch() == (2, 12.5)


def test_a_folder_without_logs_is_a_clear_error(tmp_path):
    with pytest.raises(NoLogsError, match='has no training logs'):
        read_scalars(tmp_path)
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/plot_curves.py', str(tmp_path)], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 2 and 'has no training logs' in proc.stderr and 'Traceback' not in proc.stderr


def test_smooth_is_a_trailing_mean():
    import numpy as np

    assert smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2).tolist() == [1.0, 2.0, 4.0, 6.0]


def test_curves_of_a_real_run_one_panel_per_loss_and_the_best_epoch(tmp_path, demo_root):
    cfg = tiny_runner_cfg(str(tmp_path / 'work'), str(demo_root), max_epochs=2)
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = read_scalars(tmp_path / 'work')
    assert 'loss' in scalars.train and scalars.val['mR'][0].tolist() == [1, 2]
    out = tmp_path / 'curves.png'
    titles = plot_curves([scalars, read_scalars(tmp_path / 'work', name='again')], out)
    assert titles[0] == 'loss' and titles[-1] == 'validation' and out.stat().st_size > 10_000


def test_tensorboard_backend_writes_event_files(tmp_path, demo_root):
    pytest.importorskip('tensorboard', reason='the tensorboard extra is not installed')
    from mmengine.config import Config

    cfg = Config(tiny_runner_cfg(str(tmp_path / 'work'), str(demo_root), max_epochs=1))
    add_tensorboard(cfg)
    add_tensorboard(cfg)  # once only
    assert [b['type'] for b in cfg.visualizer['vis_backends']] == ['LocalVisBackend', 'TensorboardVisBackend']
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert list((tmp_path / 'work').glob('*/vis_data/events.out.tfevents.*'))
