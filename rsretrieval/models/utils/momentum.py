"""Momentum (EMA) copies of modules and the feature queue of MoCo/ALBEF."""

from __future__ import annotations

import copy

import torch
from mmengine.dist import all_gather, get_world_size
from torch import nn


def _as_buffers(module: nn.Module) -> list[str]:
    """Turn every parameter of ``module`` into a buffer of the same name, in place.

    Returns:
        The dotted names of the converted tensors.
    """
    names = []
    for prefix, sub in module.named_modules():
        for name, param in list(sub._parameters.items()):
            if param is None:
                continue
            del sub._parameters[name]
            sub.register_buffer(name, param.detach().clone())
            names.append(f'{prefix}.{name}' if prefix else name)
    return names


class MomentumCopy(nn.Module):
    """A copy of ``source`` updated as ``m = momentum * m + (1 - momentum) * source``.

    The copy's weights are buffers, not parameters: they are saved in the
    state dict (so resuming restores them) and moved with the model, but no
    optimizer sees them and no gradient flows into them.

    Args:
        source: The module to follow.
        momentum: EMA coefficient (ALBEF: 0.995).
    """

    def __init__(self, source: nn.Module, momentum: float = 0.995) -> None:
        super().__init__()
        if not 0 <= momentum < 1:
            raise ValueError(f'momentum must be in [0, 1), got {momentum}')
        self.momentum = momentum
        self.module = copy.deepcopy(source)
        self._names = _as_buffers(self.module)
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, source: nn.Module) -> None:
        """One EMA step towards ``source``'s current parameters."""
        params = dict(source.named_parameters())
        buffers = dict(self.module.named_buffers())
        mine = [buffers[n] for n in self._names]
        theirs = [params[n].detach() for n in self._names]
        # m + (1 - momentum) (s - m) = momentum m + (1 - momentum) s, in one pass over the weights
        torch._foreach_lerp_(mine, theirs, 1 - self.momentum)

    @torch.no_grad()
    def copy_from(self, source: nn.Module) -> None:
        """Set the copy to ``source``'s current weights and buffers (no EMA).

        Called after ``source`` received its weights (pretrained, initialised or
        loaded): an EMA that starts from other weights would feed the ITC queue
        with features of a different network for thousands of steps.
        """
        self.module.load_state_dict(source.state_dict(), strict=True)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


class FeatureQueue(nn.Module):
    """FIFO of momentum image/text embeddings and their image ids (buffers).

    Empty slots hold random unit vectors with id -1 (never a positive), as in
    ALBEF. Every rank enqueues the embeddings of the whole global batch.

    Args:
        size: Queue length; at least the global batch size.
        dim: Embedding width.
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer('img', nn.functional.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer('txt', nn.functional.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer('ids', torch.full((size,), -1, dtype=torch.long))
        self.register_buffer('ptr', torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, img: torch.Tensor, txt: torch.Tensor, ids: torch.Tensor) -> None:
        """Append a batch (gathered from every rank), overwriting the oldest entries.

        Batches of any size (the last, smaller batch of an epoch too) wrap
        around the end of the queue.

        Raises:
            ValueError: The global batch is larger than the queue.
        """
        if get_world_size() > 1:
            img, txt, ids = (torch.cat(all_gather(t.contiguous())) for t in (img, txt, ids))
        n = img.shape[0]
        if n > self.size:
            raise ValueError(
                f'ITC queue size {self.size} is smaller than the global batch size {n} '
                '(batch size x GPUs): the queue must hold at least one batch'
            )
        slots = (self.ptr + torch.arange(n, device=self.ptr.device)) % self.size
        self.img[slots] = img.to(self.img.dtype)  # fp32 queue under bf16/fp16 autocast
        self.txt[slots] = txt.to(self.txt.dtype)
        self.ids[slots] = ids
        self.ptr.copy_((self.ptr + n) % self.size)
