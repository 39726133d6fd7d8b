"""Progress lines on time, loss reads at logged steps, and a warning when training stalls."""

from types import SimpleNamespace

import pytest
from helpers import tiny_runner_cfg
from mmengine.runner import Runner

from rsretrieval.engine.hooks import ProgressLoggerHook, StallWatchdogHook


def _runner(iteration, iters_per_epoch=100):
    return SimpleNamespace(iter=iteration, train_dataloader=[None] * iters_per_epoch)


def test_first_iteration_then_interval_then_time(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr('rsretrieval.engine.hooks.progress_logger_hook.time.monotonic', lambda: clock[0])
    hook = ProgressLoggerHook(interval=50, max_seconds=30)
    hook.before_train(None)
    assert hook.log_due(_runner(0), 0)  # the first iteration always
    hook._last_line = 0.0
    clock[0] = 10.0
    assert not hook.log_due(_runner(1), 1)
    assert not hook.log_due(_runner(1), 1)  # decided once per iteration
    clock[0] = 31.0
    assert hook.log_due(_runner(2), 2)  # 30 s of silence
    hook._last_line = 31.0
    clock[0] = 32.0
    assert hook.log_due(_runner(49), 49)  # every 50 iterations
    assert hook.log_due(_runner(99), 99)  # the end of an epoch


def test_progress_lines_are_written_within_the_time_limit(tmp_path, demo_root):
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root), max_epochs=1)
    # an interval longer than the epoch: only the first line, the end of the epoch and the time rule remain
    cfg['default_hooks']['logger'] = dict(type='ProgressLoggerHook', interval=1000, max_seconds=1e-6)
    cfg['train_cfg'] = dict(type='RetrievalTrainLoop', max_epochs=1, val_interval=1, loss_sync_interval=5)
    cfg['log_level'] = 'INFO'
    runner = Runner.from_cfg(cfg)
    runner.train()
    log = (tmp_path / runner.timestamp / f'{runner.timestamp}.log').read_text()
    lines = [line for line in log.splitlines() if 'Epoch(train)' in line]
    n_iters = len(runner.train_dataloader)
    assert len(lines) == n_iters  # every iteration, as max_seconds is ~0
    # every line shows a loss read at that step (loss_sync_interval=5 would leave gaps otherwise)
    assert all('loss:' in line for line in lines)


def test_watchdog_warns_once_per_period_and_names_the_phase(monkeypatch):
    hook = StallWatchdogHook(timeout=60, factor=10, poll=1)
    runner = SimpleNamespace(iter=7, max_iters=100)
    hook._runner = runner
    hook._mark('data')
    start = hook._last
    assert hook.check(start + 30) is None
    message = hook.check(start + 61)
    assert 'for 61 s' in message and 'data loader' in message and 'iteration 7 of 100' in message
    assert hook.check(start + 62) is None  # once per period
    assert hook.check(start + 122) is not None
    hook._mark('step')
    assert 'inside the training step' in hook.check(hook._last + 61)
    hook._mark('paused')  # validation
    assert hook.check(hook._last + 1000) is None


def test_watchdog_limit_follows_slow_iterations():
    hook = StallWatchdogHook(timeout=60, factor=10)
    hook._durations = [20.0, 20.0, 20.0]
    assert hook.limit() == 200.0


def test_watchdog_thread_starts_and_stops(tmp_path, demo_root):
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root), max_epochs=1)
    cfg['custom_hooks'] = [dict(type='StallWatchdogHook', timeout=300, poll=0.05)]
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, StallWatchdogHook))
    assert hook._thread is None and hook._stop.is_set()


def test_a_loader_without_batches_is_an_error_not_silence(tmp_path, demo_root):
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root), max_epochs=1)
    cfg['train_cfg'] = dict(type='RetrievalTrainLoop', max_epochs=1)
    cfg['train_dataloader'].update(batch_size=1000, drop_last=True)  # 120 pairs: no full batch
    with pytest.raises(ValueError, match='has no batches: its RSCaptionDataset holds 120 items'):
        Runner.from_cfg(cfg).train()
