"""Cost of a model: parameters, FLOPs, evaluation and per-pair inference time."""

from .complexity import INFERENCE_MODULES, count_parameters, flops_per_item, time_evaluation, time_pair

__all__ = ['INFERENCE_MODULES', 'count_parameters', 'flops_per_item', 'time_evaluation', 'time_pair']
