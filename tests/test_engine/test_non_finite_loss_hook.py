"""Training stops on a NaN or infinite loss, naming the iteration and the term; with
losses read every few steps, any hook asks for a read and gets the late losses."""

import pytest
import torch
from helpers import tiny_runner_cfg
from mmengine.hooks import Hook
from mmengine.runner import Runner

from rsretrieval.models.retrievers import DualEncoderRetriever
from rsretrieval.registry import HOOKS, MODELS


@MODELS.register_module()
class _LossTurnsNaN(DualEncoderRetriever):
    """The two-tower model whose ITC loss becomes NaN on its third training step."""

    calls = 0

    def loss(self, inputs, data_samples):
        losses = super().loss(inputs, data_samples)
        type(self).calls += 1
        if type(self).calls == 3:
            losses['loss_itc'] = losses['loss_itc'] * float('nan')
        return losses


def _train_until_nan(tmp_path, demo_root, checkpoint_interval: int, **train_cfg) -> str:
    """Train the model whose third step is NaN; the error message."""
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root), max_epochs=1)
    cfg['model']['type'] = '_LossTurnsNaN'
    if train_cfg:
        cfg['train_cfg'] = dict(type='RetrievalTrainLoop', max_epochs=1, **train_cfg)
    cfg['default_hooks']['checkpoint'] = dict(type='AtomicCheckpointHook', interval=checkpoint_interval, by_epoch=False)
    cfg['custom_hooks'] = [dict(type='SafeCheckpointHook'), dict(type='NonFiniteLossHook')]
    _LossTurnsNaN.calls = 0
    runner = Runner.from_cfg(cfg)
    with pytest.raises(FloatingPointError) as err:
        runner.train()
    return str(err.value)


def test_training_stops_at_the_iteration_and_names_the_term(tmp_path, demo_root):
    message = _train_until_nan(tmp_path, demo_root, checkpoint_interval=1)
    assert 'non-finite loss at iteration 3 (epoch 1, batch 2): loss, loss_itc' in message
    assert 'loss_itc=nan' in message and 'sample_idx of the batch: [' in message
    assert (tmp_path / 'iter_2.pth').is_file() and not (tmp_path / 'iter_3.pth').exists()
    torch.load(tmp_path / 'iter_2.pth', weights_only=True)  # the last checkpoint is intact


def test_finite_losses_pass(tmp_path, demo_root):
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root), max_epochs=1)
    cfg['custom_hooks'] = [dict(type='SafeCheckpointHook'), dict(type='NonFiniteLossHook')]
    Runner.from_cfg(cfg).train()
    assert (tmp_path / 'epoch_1.pth').is_file()


def test_losses_read_every_few_steps_are_checked_late_but_before_a_checkpoint(tmp_path, demo_root):
    message = _train_until_nan(tmp_path, demo_root, checkpoint_interval=2, loss_sync_interval=4)
    # step 3 is read at step 4 (a checkpoint step), before its checkpoint
    assert 'non-finite loss at iteration 3 (epoch 1, batch 2): loss, loss_itc' in message
    assert '1 steps later, before any checkpoint' in message
    assert (tmp_path / 'iter_2.pth').is_file() and not (tmp_path / 'iter_4.pth').exists()


def test_reading_losses_every_few_steps_logs_the_same_history(tmp_path, demo_root):
    histories = []
    for interval in (1, 3):
        cfg = tiny_runner_cfg(str(tmp_path / str(interval)), str(demo_root), max_epochs=1)
        cfg['train_cfg'] = dict(type='RetrievalTrainLoop', max_epochs=1, loss_sync_interval=interval)
        cfg['experiment_name'] = f'sync_{interval}_{tmp_path.name}'
        runner = Runner.from_cfg(cfg)
        runner.train()
        hub = runner.message_hub
        histories.append({k: hub.get_scalar(k).data[0].tolist() for k in ('train/loss', 'train/loss_itc', 'train/lr')})
    assert len(histories[0]['train/loss']) > 4  # several steps, not a multiple of 3 necessarily
    assert histories[0] == histories[1]


@HOOKS.register_module()
class _LossReadRecorder(Hook):
    """A plugin-style hook that asks for the losses of step 2 and records how it got each step's."""

    def __init__(self) -> None:
        self.late: list[tuple[int, int, list[str]]] = []  # (step, step it was read at, loss names)
        self.on_time: list[int] = []

    def needs_losses(self, runner, batch_idx: int) -> bool:
        return runner.iter + 1 == 2

    def after_losses_read(self, runner, iteration: int, batch_idx: int, data_batch, losses: dict) -> None:
        assert batch_idx == iteration - 1 and 'sample_idx' in data_batch['data_samples']
        self.late.append((iteration, runner.iter + 1, sorted(losses)))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if outputs is not None:
            self.on_time.append(runner.iter + 1)


@pytest.mark.parametrize('interval', [1, 4])
def test_any_hook_can_ask_for_a_read_and_gets_the_late_losses(tmp_path, demo_root, interval):
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root), max_epochs=1)
    cfg['train_cfg'] = dict(type='RetrievalTrainLoop', max_epochs=1, loss_sync_interval=interval)
    cfg['custom_hooks'] = [dict(type='_LossReadRecorder')]
    runner = Runner.from_cfg(cfg)
    runner.train()
    recorder = next(h for h in runner.hooks if isinstance(h, _LossReadRecorder))
    steps = list(range(1, runner.iter + 1))
    assert len(steps) > 4
    if interval == 1:
        assert recorder.on_time == steps and recorder.late == []
        return
    # step 2 is read because the hook asked, step 4 by the interval, the last one at the end of the epoch
    assert recorder.on_time[:2] == [2, 4] and recorder.on_time[-1] == steps[-1]
    assert [(step, at) for step, at, _ in recorder.late[:2]] == [(1, 2), (3, 4)]
    assert sorted(recorder.on_time + [step for step, *_ in recorder.late]) == steps
    assert all('loss' in names and 'loss_itc' in names for *_, names in recorder.late)
