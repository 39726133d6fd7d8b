"""Keep checkpoints loadable with ``torch.load(weights_only=True)``."""

from __future__ import annotations

from mmengine.hooks import Hook

from rsretrieval.registry import HOOKS
from rsretrieval.utils.safe_types import restore_history_buffers, to_safe_types


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Store numpy content of checkpoints as tensors / numbers and restore it.

    mmengine's message hub and meta hold numpy arrays, numpy scalars and
    ``HistoryBuffer`` objects; loading them under ``weights_only=True`` would
    need numpy internals and ``builtins.getattr`` on the allow-list. This hook
    stores them as tensors, numbers and plain dicts before the checkpoint is
    written and rebuilds the ``HistoryBuffer`` objects after loading (before
    the runner restores its message hub), so torch's default allow-list
    suffices.
    """

    priority = 'VERY_HIGH'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key in ('meta', 'message_hub'):
            if key in checkpoint:
                checkpoint[key] = to_safe_types(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = restore_history_buffers(checkpoint['message_hub'])
