"""The one report of a checkpoint that does not fit a model: missing, unexpected and reshaped tensors.

Both the exact load of a trained checkpoint (:func:`mismatch_summary`) and the
pretrained-weight loader (:mod:`rsretrieval.weights.loading`) describe a
misfit with :func:`mismatch_report`, so the two read the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .checkpoint_reading import extract_state_dict
from .saved_config import saved_architecture


@dataclass(frozen=True)
class StateMismatch:
    """How a checkpoint's tensors differ from those a model must receive.

    Attributes:
        missing: The model's tensors the checkpoint does not fill.
        unexpected: The checkpoint's tensors the model has no place for.
        other_shape: Tensors both hold, with another shape in the checkpoint.
        model_tensors: How many tensors the model must receive.
    """

    missing: Sequence[str]
    unexpected: Sequence[str]
    other_shape: Sequence[str]
    model_tensors: int

    @classmethod
    def between(cls, own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> StateMismatch:
        """Compare a model's state dict ``own`` with a checkpoint's ``state``, key by key."""
        return cls(
            missing=[k for k in own if k not in state],
            unexpected=[k for k in state if k not in own],
            other_shape=[k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)],
            model_tensors=len(own),
        )

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.other_shape)

    def counts(self) -> str:
        """``"2 of the model's 40 tensors missing (a.b.c..., d.e); 1 unexpected (f); ..."``."""
        parts = []
        if self.missing:
            parts.append(
                f"{len(self.missing)} of the model's {self.model_tensors} tensors missing ({key_sample(self.missing)})"
            )
        if self.unexpected:
            parts.append(f'{len(self.unexpected)} unexpected ({key_sample(self.unexpected)})')
        if self.other_shape:
            parts.append(f'{len(self.other_shape)} of another shape ({key_sample(self.other_shape)})')
        return '; '.join(parts)


def key_sample(keys: Sequence[str], n: int = 3) -> str:
    """The first ``n`` keys, shortened to three dotted parts."""
    shown = ['.'.join(k.split('.')[:3]) + ('...' if k.count('.') > 2 else '') for k in keys[:n]]
    return ', '.join(shown) + (', ...' if len(keys) > n else '')


def mismatch_report(where: str | os.PathLike, model: str, holds: str, mismatch: StateMismatch) -> str:
    """``'{where} does not fit {model}: the checkpoint {holds}; {counts}'`` on one line."""
    return f'{where} does not fit {model}: the checkpoint {holds}; {mismatch.counts()}'


def architecture_of(model: torch.nn.Module) -> str:
    """``'CMPAGL (backbone Gswin)'``: the model's class and its backbone's, if it has one."""
    backbone = getattr(model, 'backbone', None)
    return type(model).__name__ + (f' (backbone {type(backbone).__name__})' if backbone is not None else '')


def mismatch_summary(path: str | os.PathLike, checkpoint: Mapping, model: torch.nn.Module) -> str | None:
    """One line on why ``checkpoint`` does not fit ``model``, or None when it fits exactly.

    Names the architecture the checkpoint holds (from the config saved with it,
    when there is one) against the one the config builds, the counts of missing,
    unexpected and differently shaped tensors, and the first few of each.
    """
    state = extract_state_dict(checkpoint)
    mismatch = StateMismatch.between(model.state_dict(), state)
    if not mismatch:
        return None
    saved = saved_architecture(checkpoint)
    holds = f'holds {saved}' if saved else f'holds {len(state)} tensors'
    return mismatch_report(path, "the config's model", f'{holds}, the config builds {architecture_of(model)}', mismatch)
