"""mmengine metric wrapping :func:`recall_at_k`."""

from __future__ import annotations

from collections.abc import Sequence

from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.evaluator import BaseMetric

from rsretrieval.registry import METRICS

from ..recall import recall_at_k, recall_at_k_blockwise, recall_at_k_reranked


@METRICS.register_module()
class RetrievalRecall(BaseMetric):
    """R@K in both directions and mR from a whole similarity matrix.

    The retrieval loops pass one result holding ``sims_i2t``, ``sims_t2i``,
    ``img2txt`` and ``txt2img`` for the whole test set, or, instead of the two
    matrices, ``score_block`` and ``shape`` (see :func:`recall_at_k_blockwise`)
    when the matrix is not kept, or ``sims`` with ``i2t_candidates`` and
    ``t2i_candidates`` of a top-K reranker (see :func:`recall_at_k_reranked`). Every rank holds the
    same full matrix, so nothing is gathered: rank 0 computes and broadcasts.

    Args:
        ks: The K values.
        prefix: Key prefix (mmengine convention); empty by default so the keys
            read ``i2t_R@1``, ..., ``mR``.
    """

    default_prefix = ''

    def __init__(self, ks: Sequence[int] = (1, 5, 10), prefix: str | None = None, **kwargs) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.ks = tuple(ks)

    def process(self, data_batch: object, data_samples: Sequence[dict]) -> None:
        self.results.extend(data_samples)

    def compute_metrics(self, results: list) -> dict[str, float]:
        if len(results) != 1:
            raise ValueError(f'RetrievalRecall expects one whole-test-set result, got {len(results)}')
        r = results[0]
        if 'i2t_candidates' in r:
            return recall_at_k_reranked(
                r['sims'], r['i2t_candidates'], r['t2i_candidates'], r['img2txt'], r['txt2img'], self.ks
            )
        if 'score_block' in r:
            return recall_at_k_blockwise(r['score_block'], *r['shape'], r['img2txt'], r['txt2img'], self.ks)
        return recall_at_k(r['sims_i2t'], r['sims_t2i'], r['img2txt'], r['txt2img'], self.ks)

    def evaluate(self, size: int = 1) -> dict[str, float]:
        metrics = [None]
        if is_main_process():
            metrics = [self.compute_metrics(self.results)]
            if self.prefix:
                metrics = [{f'{self.prefix}/{k}': v for k, v in metrics[0].items()}]
        broadcast_object_list(metrics)
        self.results.clear()
        return metrics[0]
