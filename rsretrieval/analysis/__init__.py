"""Studies of a model: its cost, its training curves and its rerankers' parameters.

The cost (parameters, FLOPs, evaluation and per-pair inference time) and the curves
are exported here; the reranker parameter study is :mod:`.rerank_study` and its
figures :mod:`.rerank_study_figures`.
"""

from .complexity import INFERENCE_MODULES, count_parameters, flops_per_item, time_evaluation, time_pair
from .curves import NoLogsError, RunScalars, draw_curves, plot_curves, read_scalars, smooth

__all__ = [
    'INFERENCE_MODULES',
    'NoLogsError',
    'RunScalars',
    'count_parameters',
    'draw_curves',
    'flops_per_item',
    'plot_curves',
    'read_scalars',
    'smooth',
    'time_evaluation',
    'time_pair',
]
