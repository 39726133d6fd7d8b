from .checkpoint import (
    CheckpointError,
    UnsafeCheckpointError,
    load_checkpoint_file,
    load_checkpoint_into_runner,
    load_model_weights,
    load_weights,
    mismatch_summary,
    restore_history_buffers,
    to_safe_types,
)
from .config import (
    ConfigError,
    add_common_args,
    check_cfg_options,
    finish_distributed,
    load_config,
    merge_cfg_options,
    quiet_runner,
    read_config,
    setup_distributed,
)
from .precision import PrecisionChoice, cpu_bf16_support, log_precision, resolve_precision
from .pretrained import PACKAGED_WEIGHTS, read_pretrained_tensors, resolve_pretrained
from .setup_env import register_all_modules

__all__ = [
    'CheckpointError',
    'ConfigError',
    'UnsafeCheckpointError',
    'check_cfg_options',
    'load_checkpoint_into_runner',
    'load_model_weights',
    'mismatch_summary',
    'quiet_runner',
    'read_config',
    'PACKAGED_WEIGHTS',
    'PrecisionChoice',
    'add_common_args',
    'cpu_bf16_support',
    'load_checkpoint_file',
    'finish_distributed',
    'load_config',
    'merge_cfg_options',
    'setup_distributed',
    'load_weights',
    'log_precision',
    'read_pretrained_tensors',
    'register_all_modules',
    'resolve_precision',
    'resolve_pretrained',
    'restore_history_buffers',
    'to_safe_types',
]
