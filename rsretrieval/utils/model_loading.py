"""Loading weights into a model: a trained checkpoint exactly, or pretrained weights with a report."""

from __future__ import annotations

import os

import torch

from .checkpoint_errors import CheckpointError
from .checkpoint_reading import extract_state_dict, load_checkpoint_file
from .state_mismatch import mismatch_summary


def load_model_weights(model: torch.nn.Module, path: str | os.PathLike, map_location: str = 'cpu') -> dict:
    """Load a checkpoint into ``model`` exactly (every tensor present, none extra).

    Returns:
        The checkpoint dict (``state_dict``, ``meta``, ...).

    Raises:
        CheckpointError: One line: the file is unsafe, incomplete, or does not
            fit the model (:func:`~rsretrieval.utils.state_mismatch.mismatch_summary`).
    """
    checkpoint = load_checkpoint_file(path, map_location)
    adapt = getattr(model, 'adapt_checkpoint', None)  # a model that reads other formats (CLIP releases)
    if adapt is not None:
        checkpoint = adapt(checkpoint, path)
    problem = mismatch_summary(path, checkpoint, model)
    if problem:
        raise CheckpointError(problem)
    model.load_state_dict(extract_state_dict(checkpoint), strict=True)
    return checkpoint


def load_checkpoint_into_runner(runner, path: str | os.PathLike) -> dict:
    """``runner.load_checkpoint`` for evaluation, strict, with one-line errors.

    Loads with :func:`load_model_weights` (safe, exact) into the runner's model
    (unwrapped from DDP), then calls the ``after_load_checkpoint`` hooks.

    Raises:
        CheckpointError: The file is unsafe, incomplete or does not fit.
    """
    from mmengine.model import is_model_wrapper

    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    checkpoint = load_model_weights(model, path)
    runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
    runner.logger.info(f'Weights loaded from {path}')
    return checkpoint
