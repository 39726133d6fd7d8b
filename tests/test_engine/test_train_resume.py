"""End-to-end training with the Runner: val loop, checkpoint safety, resume."""

import pytest
import torch
from helpers import tiny_runner_cfg
from mmengine.hooks import Hook
from mmengine.runner import Runner


class _Interrupt(Exception):
    pass


class _StopAt(Hook):
    """Raise after a given training iteration, as a killed run would stop."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.iteration:
            raise _Interrupt


class _RecordIters(Hook):
    def __init__(self) -> None:
        self.iters: list[int] = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.iters.append(runner.iter)


def test_train_validate_and_checkpoint_loads_weights_only(tmp_path, demo_root):
    runner = Runner.from_cfg(tiny_runner_cfg(str(tmp_path), str(demo_root), max_epochs=2))
    runner.train()
    metrics = runner.message_hub.get_scalar('val/mR').current()
    assert 0 <= metrics <= 100
    ckpt = torch.load(tmp_path / 'epoch_2.pth', weights_only=True)
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['iter'] == 2 * 15
    test_metrics = runner.test()
    standard = {'i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5', 't2i_R@10', 'mR'}
    shared = {'shared/caption_strings', 'shared/text_queries', 'shared/image_queries'}
    assert set(test_metrics) == standard | {f'equiv/{k}' for k in standard} | shared


def test_resume_continues_from_saved_iteration(tmp_path, demo_root):
    # 24 train images x 5 captions = 120 pairs, batch 8 -> 15 iterations per epoch.
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root), max_epochs=2)
    cfg['train_cfg'] = dict(type='IterBasedTrainLoop', max_iters=10, val_interval=100)
    cfg['default_hooks']['checkpoint'] = dict(type='AtomicCheckpointHook', interval=4, by_epoch=False)
    cfg['log_processor'] = dict(by_epoch=False)
    first = Runner.from_cfg(cfg)
    first.register_hook(_StopAt(6))
    with pytest.raises(_Interrupt):
        first.train()
    assert (tmp_path / 'iter_4.pth').is_file() and not (tmp_path / 'iter_8.pth').exists()
    saved = torch.load(tmp_path / 'iter_4.pth', weights_only=True)['state_dict']

    cfg = dict(cfg, experiment_name=cfg['experiment_name'] + '_resumed', resume=True, load_from=None)
    second = Runner.from_cfg(cfg)
    record = _RecordIters()
    second.register_hook(record)
    loaded = {}

    class _Capture(Hook):
        def before_train(self, runner) -> None:
            loaded.update({k: v.clone() for k, v in runner.model.state_dict().items()})

    second.register_hook(_Capture())
    second.train()
    assert record.iters[0] == 4 and record.iters[-1] == 9
    assert all(torch.equal(loaded[k], v) for k, v in saved.items())
    assert (tmp_path / 'iter_8.pth').is_file()
