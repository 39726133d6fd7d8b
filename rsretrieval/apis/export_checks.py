"""Checks that an exported model is the trained one: the same tensors, the same embeddings."""

from __future__ import annotations

import torch

from .inference import embed_texts

#: Captions both models embed before an export is published: the same weights must give the same numbers.
PROBE_CAPTIONS = ('a bridge over a river', 'many buildings and some green trees beside a road')


class ExportError(RuntimeError):
    """The exported folder would not reproduce the model; nothing was written."""


def inference_state(trained: torch.nn.Module, exported: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trained tensors that the exported model holds; only training state may be left out.

    Args:
        trained: The trained model.
        exported: The model built from the exported config.

    Returns:
        The state dict of ``trained`` restricted to the keys of ``exported``.

    Raises:
        ExportError: ``exported`` lacks a trained tensor that is not training
            state, holds one ``trained`` lacks, or holds one of another shape.
    """
    from rsretrieval.models.utils.momentum import FeatureQueue, MomentumCopy

    source, own = trained.state_dict(), exported.state_dict()
    missing = [k for k in own if k not in source]
    shapes = [k for k in own if k in source and source[k].shape != own[k].shape]
    training = tuple(f'{n}.' for n, m in trained.named_modules() if isinstance(m, (MomentumCopy, FeatureQueue)))
    lost = [k for k in source if k not in own and not k.startswith(training)]
    if missing or shapes or lost:
        raise ExportError(
            'the exported config does not build the trained model: '
            f'{len(missing)} tensors it lacks ({missing[:3]}), {len(shapes)} of another shape ({shapes[:3]}), '
            f'{len(lost)} it would lose ({lost[:3]})'
        )
    return {k: source[k] for k in own}


def check_outputs(trained: torch.nn.Module, exported: torch.nn.Module) -> None:
    """Both models embed :data:`PROBE_CAPTIONS` identically.

    The BERT config and the tokenizer were rebuilt for the export: this is
    where a difference would show.

    Args:
        trained: The trained model.
        exported: The exported model, its weights loaded, in eval mode.

    Raises:
        ExportError: The embeddings differ, in shape or in any value.
    """
    with torch.no_grad():
        before = embed_texts(trained.eval(), PROBE_CAPTIONS)
        after = embed_texts(exported, PROBE_CAPTIONS)
    if before.shape != after.shape or not torch.equal(before, after):
        gap = (before - after).abs().max().item() if before.shape == after.shape else 'shape'
        raise ExportError(f'the exported model embeds captions differently from the trained one (max gap {gap})')
