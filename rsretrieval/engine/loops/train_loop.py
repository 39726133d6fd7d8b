"""An epoch-based training loop that can resume in the middle of an epoch exactly."""

from __future__ import annotations

import torch
from mmengine.hooks import CheckpointHook
from mmengine.runner import EpochBasedTrainLoop

from rsretrieval.registry import LOOPS

from ..hooks import NonFiniteLossHook
from .loader_faults import report_worker_failures, resume_hint, track_workers


@LOOPS.register_module()
class RetrievalTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` with exact mid-epoch resumption.

    - Resumed from a checkpoint taken inside an epoch, the epoch continues
      after the batches it had trained on, instead of starting the epoch
      again (the sampler must offer ``skip``, as
      :class:`~rsretrieval.datasets.ReproducibleSampler` does; its order is a
      function of seed and epoch, so the remaining batches are the same).
    - The training loader draws its worker seeds from its own generator, so
      creating an iterator does not advance torch's global generator (which the
      model's dropout, MLM masks and ITM negatives use, and which
      ``RandomStateHook`` restores on resume).

    - ``loss_sync_interval=N`` reads the losses back to the host once every
      ``N`` steps instead of after every step, so that a GPU never waits for
      the host between steps. The hooks still run after every step (the
      learning rate follows its schedule exactly) with ``outputs=None`` between
      reads; at a read, the losses of the waiting steps go to the message hub
      in order and are checked by ``NonFiniteLossHook`` (a non-finite loss
      stops training at most ``N - 1`` steps late, before any checkpoint:
      reads also happen at the end of every epoch, at every step that saves
      a checkpoint by iteration, and when a ``PreemptionHook`` stop is
      pending) and at every step that ``ProgressLoggerHook`` logs, so that a
      logged line shows current losses. ``1`` (default) is mmengine's behaviour.
    - A data-loader worker that dies (killed, crashed) stops training with a
      one-line :class:`~rsretrieval.engine.loops.loader_faults.LoaderWorkerError`
      naming the worker, the signal, the sample and image file it was loading,
      and how to resume.

    Args:
        runner: The runner.
        dataloader: Training dataloader (config or object).
        max_epochs: Epochs to train.
        loss_sync_interval: Steps between reads of the losses.
        **kwargs: As for ``EpochBasedTrainLoop`` (``val_begin``, ``val_interval``, ...).
    """

    def __init__(self, runner, dataloader, max_epochs: int, loss_sync_interval: int = 1, **kwargs) -> None:
        super().__init__(runner, dataloader, max_epochs, **kwargs)
        if len(self.dataloader) == 0:
            dataset = self.dataloader.dataset
            raise ValueError(
                f'the train dataloader has no batches: its {type(dataset).__name__} holds {len(dataset)} items '
                f'for batch size {self.dataloader.batch_size}'
                + (' with drop_last=True' if getattr(self.dataloader, 'drop_last', False) else '')
                + ' (check data_root, ann_file and split)'
            )
        if loss_sync_interval < 1:
            raise ValueError(f'loss_sync_interval must be at least 1, got {loss_sync_interval}')
        self.loss_sync_interval = loss_sync_interval
        self._pending: list[tuple[int, int, dict, dict]] = []
        seed = getattr(runner, 'seed', None) or 0
        self.dataloader.generator = torch.Generator().manual_seed(seed)
        track_workers(self.dataloader, 'train')  # a worker that dies is then reported with its sample

    def run(self) -> torch.nn.Module:
        with report_worker_failures(then=lambda: resume_hint(self.runner)):
            return super().run()

    def run_iter(self, idx: int, data_batch: dict) -> None:
        runner = self.runner
        runner.call_hook('before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = runner.model.train_step(data_batch, optim_wrapper=runner.optim_wrapper)
        if self.loss_sync_interval > 1:
            # keep what a non-finite report names (the batch's sample_idx), not the images
            samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
            trace = {'data_samples': {'sample_idx': samples.get('sample_idx')}} if isinstance(samples, dict) else None
            self._pending.append((self._iter, idx, trace, {k: v.detach() for k, v in outputs.items()}))
            outputs = self._read_pending(idx, last_of_epoch=idx + 1 == len(self.dataloader))
        runner.call_hook('after_train_iter', batch_idx=idx, data_batch=data_batch, outputs=outputs)
        self._iter += 1

    def _read_pending(self, idx: int, last_of_epoch: bool) -> dict | None:
        """At a read step: the current step's losses as floats, after the waiting
        steps' went to the message hub and the non-finite check. Else None."""
        step = self._iter + 1
        stop = any(getattr(h, 'stop_requested', False) for h in self.runner.hooks)
        checkpoint = any(
            isinstance(h, CheckpointHook) and not h.by_epoch and h.interval > 0 and step % h.interval == 0
            for h in self.runner.hooks
        )
        due = step % self.loss_sync_interval == 0 or len(self._pending) >= self.loss_sync_interval
        # a progress line is due (ProgressLoggerHook): it must show this step's losses
        logged = any(h.log_due(self.runner, idx) for h in self.runner.hooks if hasattr(h, 'log_due'))
        if not (due or last_of_epoch or stop or checkpoint or logged):
            return None
        keys = [list(out) for *_, out in self._pending]
        flat = torch.stack([out[k].float().reshape(()) for *_, out in self._pending for k in out]).tolist()
        read, pos = [], 0
        for (iteration, idx, batch, _), names in zip(self._pending, keys):
            read.append((iteration, idx, batch, dict(zip(names, flat[pos : pos + len(names)]))))
            pos += len(names)
        self._pending.clear()
        checks = [h for h in self.runner.hooks if isinstance(h, NonFiniteLossHook)]
        for iteration, idx, batch, values in read[:-1]:
            for hook in checks:
                hook.check(self.runner, iteration + 1, idx, batch, values)
            for key, value in values.items():
                self.runner.message_hub.update_scalar(f'train/{key}', value)
        return read[-1][3]

    def run_epoch(self) -> None:
        done = self._iter - self._epoch * len(self.dataloader)  # batches of this epoch already trained on
        if done > 0:
            sampler = self.dataloader.sampler
            if not hasattr(sampler, 'skip'):
                raise RuntimeError(
                    f'resuming inside epoch {self._epoch + 1} (after {done} batches) needs a sampler that can skip '
                    f'them; {type(sampler).__name__} cannot: use ReproducibleSampler'
                )
            sampler.skip(done * self.dataloader.batch_size)
            self.runner.logger.info(f'Resuming epoch {self._epoch + 1} after its first {done} batches')
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        self._pending.clear()
        for idx, data_batch in enumerate(self.dataloader, start=max(done, 0)):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
