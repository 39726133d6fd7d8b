"""Utilities: checkpoints, configs, precision, pretrained weights, module registration.

The names load lazily, so that a tool can check its arguments (``rsretrieval.utils.config``)
before torch and the models are imported.
"""

from __future__ import annotations

from rsretrieval.lazy_exports import lazy_getattr

_EXPORTS = {
    'CheckpointError': 'checkpoint',
    'CheckpointWriteError': 'checkpoint',
    'UnsafeCheckpointError': 'checkpoint',
    'atomic_write': 'checkpoint',
    'find_resumable_checkpoint': 'checkpoint',
    'load_checkpoint_file': 'checkpoint',
    'load_checkpoint_into_runner': 'checkpoint',
    'load_model_weights': 'checkpoint',
    'load_weights': 'checkpoint',
    'mismatch_summary': 'checkpoint',
    'remove_stale_temporaries': 'checkpoint',
    'restore_history_buffers': 'checkpoint',
    'to_safe_types': 'checkpoint',
    'ConfigError': 'config',
    'add_common_args': 'config',
    'add_tensorboard': 'config',
    'check_cfg_options': 'config',
    'finish_distributed': 'config',
    'load_config': 'config',
    'merge_cfg_options': 'config',
    'apply_cfg_options': 'config',
    'pin_memory_where_useful': 'config',
    'quiet_logs': 'config',
    'quiet_runner': 'config',
    'read_config': 'config',
    'setup_distributed': 'config',
    'PrecisionChoice': 'precision',
    'cpu_bf16_support': 'precision',
    'log_precision': 'precision',
    'resolve_precision': 'precision',
    'PACKAGED_WEIGHTS': 'pretrained',
    'read_pretrained_tensors': 'pretrained',
    'resolve_pretrained': 'pretrained',
    'register_all_modules': 'setup_env',
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
