"""An epoch-based training loop that can resume in the middle of an epoch exactly."""

from __future__ import annotations

import torch
from mmengine.runner import EpochBasedTrainLoop

from rsretrieval.registry import LOOPS

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
      reads. ``1`` (default) is mmengine's behaviour. Hooks take part through
      two optional methods, looked up by name on every registered hook:

      - ``needs_losses(runner, batch_idx) -> bool``: asked of every hook at
        every step (when ``N > 1``), before ``after_train_iter``; ``True`` from any hook makes
        the step a read (``AtomicCheckpointHook`` at an iteration checkpoint,
        ``ProgressLoggerHook`` at a logged step, ``PreemptionHook`` once a stop
        signal arrived). Every hook is asked, so a hook may decide once per
        step and act on that decision in ``after_train_iter``.
      - ``after_losses_read(runner, iteration, batch_idx, data_batch, losses)``:
        called, in hook priority order, for each earlier step read at this one
        (``iteration`` 1-based, ``data_batch`` keeps only the batch's
        ``sample_idx``, ``losses`` maps names to floats), before its losses go
        to the message hub (``NonFiniteLossHook`` checks them there). The
        step that is read gets its losses in ``after_train_iter`` as usual.

      Steps are also read at the end of every epoch, so a non-finite loss
      stops training at most ``N - 1`` steps late and before any checkpoint.
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
        steps' went to ``after_losses_read`` and the message hub. Else None."""
        due = (self._iter + 1) % self.loss_sync_interval == 0 or len(self._pending) >= self.loss_sync_interval
        if not (self._hooks_need_losses(idx) or due or last_of_epoch):
            return None
        read = self._pending_as_floats()
        for iteration, batch_idx, batch, losses in read[:-1]:
            self.runner.call_hook(
                'after_losses_read', iteration=iteration + 1, batch_idx=batch_idx, data_batch=batch, losses=losses
            )
            for key, value in losses.items():
                self.runner.message_hub.update_scalar(f'train/{key}', value)
        return read[-1][3]

    def _hooks_need_losses(self, batch_idx: int) -> bool:
        """Whether a hook's ``needs_losses`` asks for this step's losses."""
        # every hook is asked, no short cut: a hook may take its decision for the step here
        hooks = [hook for hook in self.runner.hooks if hasattr(hook, 'needs_losses')]
        answers = [hook.needs_losses(self.runner, batch_idx) for hook in hooks]
        return any(answers)

    def _pending_as_floats(self) -> list[tuple[int, int, dict | None, dict[str, float]]]:
        """The waiting steps with their losses copied to the host in one transfer; clears them."""
        keys = [list(out) for *_, out in self._pending]
        flat = torch.stack([out[k].float().reshape(()) for *_, out in self._pending for k in out]).tolist()
        read, pos = [], 0
        for (iteration, batch_idx, batch, _), names in zip(self._pending, keys):
            read.append((iteration, batch_idx, batch, dict(zip(names, flat[pos : pos + len(names)]))))
            pos += len(names)
        self._pending.clear()
        return read

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
