"""Stop training on a NaN or infinite loss, saying where and which term."""

from __future__ import annotations

import math

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook

from rsretrieval.registry import HOOKS


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise ``FloatingPointError`` after an iteration whose loss is not finite.

    Every loss term the model returned is checked; the error names the
    iteration (1-based, as the log counts), the epoch, the non-finite terms
    with the values of the others, and the ``sample_idx`` of the batch, so that
    the data can be inspected. The hook runs before the checkpoint hook, so no
    checkpoint is written after the faulty step; resume from the last one
    (with a lower learning rate, or after fixing the data). With several
    processes every rank stops together (the verdict is all-reduced).
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: dict | None = None) -> None:
        if outputs:
            self.check(runner, runner.iter + 1, batch_idx, data_batch, outputs)

    def after_losses_read(self, runner, iteration: int, batch_idx: int, data_batch, losses: dict) -> None:
        """Check a step whose losses the training loop read back late, after later steps
        (``RetrievalTrainLoop(loss_sync_interval=...)``)."""
        self.check(runner, iteration, batch_idx, data_batch, losses)

    def check(self, runner, iteration: int, batch_idx: int, data_batch, outputs: dict) -> None:
        """Raise for the step ``iteration`` (1-based) when a loss term of ``outputs`` is not finite."""
        values = {
            k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in outputs.items() if 'loss' in k
        }
        bad = sorted(k for k, v in values.items() if not math.isfinite(v))
        if get_world_size() > 1:
            flag = torch.tensor([float(bool(bad))], device=_device(runner))
            all_reduce(flag, op='sum')
            if flag.item() and not bad:
                raise FloatingPointError(
                    f'iteration {iteration}: another process had a non-finite loss; stopping with it'
                )
        if not bad:
            return
        terms = ', '.join(f'{k}={values[k]}' for k in values)
        samples = ''
        if isinstance(data_batch, dict) and isinstance(data_batch.get('data_samples'), dict):
            idx = data_batch['data_samples'].get('sample_idx')
            if idx is not None:
                samples = f'; sample_idx of the batch: {[int(i) for i in idx]}'
        late = runner.iter + 1 - iteration
        where = 'before any checkpoint of this step' if not late else f'{late} steps later, before any checkpoint'
        raise FloatingPointError(
            f'non-finite loss at iteration {iteration} (epoch {runner.epoch + 1}, batch {batch_idx}): '
            f'{", ".join(bad)} ({terms}){samples}. Training stopped {where}; '
            'resume from the last checkpoint after lowering the learning rate or checking the data.'
        )


def _device(runner) -> torch.device:
    try:
        return next(runner.model.parameters()).device
    except StopIteration:
        return torch.device('cpu')
