"""Utilities: checkpoints, configs, precision, module registration.

The names load lazily, so that a tool can check its arguments (``rsretrieval.utils.cfg_options``)
before torch and the models are imported.
"""

from __future__ import annotations

from rsretrieval.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        'checkpoint_errors': ('CheckpointError', 'CheckpointWriteError', 'UnsafeCheckpointError'),
        'atomic_files': ('atomic_write', 'remove_stale_temporaries'),
        'resume': ('find_resumable_checkpoint',),
        'checkpoint_reading': ('load_checkpoint_file',),
        'model_loading': ('load_checkpoint_into_runner', 'load_model_weights'),
        'state_mismatch': ('mismatch_summary',),
        'safe_types': ('restore_history_buffers', 'to_safe_types'),
        'config_errors': ('ConfigError',),
        'config_files': ('load_config', 'read_config'),
        'cfg_options': ('apply_cfg_options', 'check_cfg_options', 'merge_cfg_options'),
        'command_args': ('add_common_args',),
        'distributed': ('finish_distributed', 'setup_distributed'),
        'quiet_logging': ('quiet_logs', 'quiet_runner'),
        'tensorboard': ('add_tensorboard',),
        'pin_memory': ('pin_memory_where_useful',),
        'cpu_memory': ('keep_freed_cpu_memory',),
        'precision': ('PrecisionChoice', 'cpu_bf16_support', 'log_precision', 'resolve_precision'),
        'setup_env': ('register_all_modules',),
    },
)
