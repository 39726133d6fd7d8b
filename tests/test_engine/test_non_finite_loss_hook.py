"""Training stops on a NaN or infinite loss, naming the iteration and the term."""

import pytest
import torch
from helpers import tiny_runner_cfg
from mmengine.runner import Runner

from rsretrieval.models.retrievers import DualEncoderRetriever
from rsretrieval.registry import MODELS


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
    cfg['default_hooks']['checkpoint'] = dict(type='CheckpointHook', interval=checkpoint_interval, by_epoch=False)
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
