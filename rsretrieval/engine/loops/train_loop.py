"""An epoch-based training loop that can resume in the middle of an epoch exactly."""

from __future__ import annotations

import torch
from mmengine.runner import EpochBasedTrainLoop

from rsretrieval.registry import LOOPS


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

    Arguments as ``EpochBasedTrainLoop``.
    """

    def __init__(self, runner, dataloader, *args, **kwargs) -> None:
        super().__init__(runner, dataloader, *args, **kwargs)
        seed = getattr(runner, 'seed', None) or 0
        self.dataloader.generator = torch.Generator().manual_seed(seed)

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
        for idx, data_batch in enumerate(self.dataloader, start=max(done, 0)):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
