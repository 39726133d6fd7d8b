"""Ramp momentum distillation up over the first epoch(s), as ALBEF does."""

from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from rsretrieval.registry import HOOKS


@HOOKS.register_module()
class DistillationWarmupHook(Hook):
    """Scale a model's momentum-distillation weight linearly from 0 to its full value.

    Before training iteration ``i`` (0-based) the model's ``distill_ramp`` is
    set to ``min(1, (i + 1) / (warmup_epochs * iterations_per_epoch))``: ALBEF's
    ``alpha * min(1, i / len(loader))`` over the first epoch. The ramp is a
    function of the iteration alone, so a resumed run continues it exactly.
    Models without ``distill_ramp`` (or with distillation off) are left alone,
    which is why the hook sits in the default runtime.

    Args:
        warmup_epochs: Epochs of the ramp (0: full weight from the first step).
    """

    priority = 'NORMAL'

    def __init__(self, warmup_epochs: float = 1.0) -> None:
        if warmup_epochs < 0:
            raise ValueError(f'warmup_epochs must be >= 0, got {warmup_epochs}')
        self.warmup_epochs = warmup_epochs

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not getattr(model, 'distill_alpha', 0) or not hasattr(model, 'distill_ramp'):
            return
        warmup_iters = self.warmup_epochs * len(runner.train_dataloader)
        model.distill_ramp = 1.0 if warmup_iters <= 0 else min(1.0, (runner.iter + 1) / warmup_iters)
