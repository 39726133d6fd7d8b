"""Ramp momentum distillation up over the first epoch(s), as ALBEF does."""

from __future__ import annotations

from mmengine.hooks import Hook
from torch import nn

from rsretrieval.registry import HOOKS


def distilling_modules(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` (itself included) that distil: a ``distill_alpha`` above 0
    and a ``distill_ramp`` (such as ``PreAlignment``)."""
    return [m for m in model.modules() if getattr(m, 'distill_alpha', 0) and hasattr(m, 'distill_ramp')]


@HOOKS.register_module()
class DistillationWarmupHook(Hook):
    """Scale every momentum-distillation weight in a model linearly from 0 to its full value.

    Before training iteration ``i`` (0-based) each distilling module's
    ``distill_ramp`` (:func:`distilling_modules`; the ramp lives with the
    distillation, in ``PreAlignment``) is set to
    ``min(1, (i + 1) / (warmup_epochs * iterations_per_epoch))``: ALBEF's
    ``alpha * min(1, i / len(loader))`` over the first epoch. The ramp is a
    function of the iteration alone, so a resumed run continues it exactly.
    Models with no distilling module are left alone, which is why the hook
    sits in the default runtime.

    Args:
        warmup_epochs: Epochs of the ramp (0: full weight from the first step).
    """

    priority = 'NORMAL'

    def __init__(self, warmup_epochs: float = 1.0) -> None:
        if warmup_epochs < 0:
            raise ValueError(f'warmup_epochs must be >= 0, got {warmup_epochs}')
        self.warmup_epochs = warmup_epochs
        self._distilling: list[nn.Module] | None = None

    def before_train(self, runner) -> None:
        self._distilling = distilling_modules(runner.model)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._distilling is None:
            self._distilling = distilling_modules(runner.model)
        if not self._distilling:
            return
        warmup_iters = self.warmup_epochs * len(runner.train_dataloader)
        ramp = 1.0 if warmup_iters <= 0 else min(1.0, (runner.iter + 1) / warmup_iters)
        for module in self._distilling:
            module.distill_ramp = ramp
