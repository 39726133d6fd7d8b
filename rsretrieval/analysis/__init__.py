"""Studies of a model and of its data: cost, training curves, the rerankers' parameters, leakage.

The cost (parameters, FLOPs, evaluation and per-pair inference time), the curves and
the leakage check across datasets are exported here; the reranker parameter study is
:mod:`.rerank_study` and its figures :mod:`.rerank_study_figures`. The names load
lazily, so that a tool can check its arguments before torch is imported.
"""

from __future__ import annotations

from rsretrieval.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        'complexity': ('INFERENCE_MODULES', 'count_parameters', 'flops_per_item', 'time_evaluation', 'time_pair'),
        'curves': ('NoLogsError', 'RunScalars', 'draw_curves', 'plot_curves', 'read_scalars', 'smooth'),
        'leakage': ('LeakCheckResult', 'check_leaks'),
    },
)
