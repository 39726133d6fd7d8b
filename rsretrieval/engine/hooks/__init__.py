from .atomic_checkpoint_hook import AtomicCheckpointHook
from .compile_hook import CompileModulesHook
from .distillation_warmup_hook import DistillationWarmupHook
from .non_finite_loss_hook import NonFiniteLossHook
from .preemption_hook import PreemptionHook
from .progress_logger_hook import ProgressLoggerHook
from .random_state_hook import RandomStateHook, get_random_state, set_random_state
from .safe_checkpoint_hook import SafeCheckpointHook
from .stall_watchdog_hook import StallWatchdogHook
from .weight_sources_hook import WeightSourcesHook

__all__ = [
    'AtomicCheckpointHook',
    'CompileModulesHook',
    'DistillationWarmupHook',
    'NonFiniteLossHook',
    'PreemptionHook',
    'ProgressLoggerHook',
    'RandomStateHook',
    'SafeCheckpointHook',
    'StallWatchdogHook',
    'WeightSourcesHook',
    'get_random_state',
    'set_random_state',
]
