"""Cost of a model (parameters, FLOPs, evaluation and per-pair inference time) and its training curves."""

from .complexity import INFERENCE_MODULES, count_parameters, flops_per_item, time_evaluation, time_pair
from .curves import NoLogsError, RunScalars, plot_curves, read_scalars, smooth

__all__ = [
    'INFERENCE_MODULES',
    'NoLogsError',
    'RunScalars',
    'count_parameters',
    'flops_per_item',
    'plot_curves',
    'read_scalars',
    'smooth',
    'time_evaluation',
    'time_pair',
]
