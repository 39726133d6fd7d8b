"""Training progress in the log on time as well as every N iterations."""

from __future__ import annotations

import time

from mmengine.hooks import LoggerHook

from rsretrieval.registry import HOOKS


@HOOKS.register_module()
class ProgressLoggerHook(LoggerHook):
    """mmengine's ``LoggerHook`` that also logs when the run is slow.

    A training line (iteration / total, losses, time per iteration, ETA) is
    written after the first iteration, every ``interval`` iterations, at the end
    of every epoch, and whenever ``max_seconds`` have passed since the last
    line: on a CPU where an iteration takes 20 s, ``interval=50`` alone would
    stay silent for 16 minutes after "Checkpoints will be saved to ...", and a
    slow run would look hung.

    With ``RetrievalTrainLoop(loss_sync_interval > 1)`` the hook asks for the
    losses to be read back at every step it will log (:meth:`needs_losses`),
    so every line shows current losses.

    Args:
        interval: Iterations between lines (as ``LoggerHook``).
        max_seconds: Longest silence between training lines; ``None`` turns
            the time rule off.
        **kwargs: As for ``LoggerHook``.
    """

    def __init__(self, interval: int = 50, max_seconds: float | None = 30.0, **kwargs) -> None:
        super().__init__(interval=interval, **kwargs)
        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f'max_seconds must be positive or None, got {max_seconds}')
        self.max_seconds = max_seconds
        self._last_line: float | None = None
        self._decision: tuple[int, bool] = (-1, False)

    def before_train(self, runner) -> None:
        self._last_line = None  # the first iteration always gets a line

    def log_due(self, runner, batch_idx: int) -> bool:
        """Whether training iteration ``runner.iter`` gets a line (decided once per iteration)."""
        if self._decision[0] != runner.iter:
            due = (
                self._last_line is None
                or self.every_n_inner_iters(batch_idx, self.interval)
                or self.end_of_epoch(runner.train_dataloader, batch_idx)
                or (self.max_seconds is not None and time.monotonic() - self._last_line >= self.max_seconds)
            )
            self._decision = (runner.iter, due)
        return self._decision[1]

    def needs_losses(self, runner, batch_idx: int) -> bool:
        """Whether this step gets a line, which must show its losses (see :meth:`log_due`)."""
        return self.log_due(runner, batch_idx)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.every_n_train_iters(runner, self.interval_exp_name):
            runner.logger.info(f'Exp name: {runner.experiment_name}')
        if not self.log_due(runner, batch_idx):
            return
        tag, log_str = runner.log_processor.get_log_after_iter(runner, batch_idx, 'train')
        runner.logger.info(log_str)
        runner.visualizer.add_scalars(tag, step=runner.iter + 1, file_path=self.json_log_path)
        self._last_line = time.monotonic()
