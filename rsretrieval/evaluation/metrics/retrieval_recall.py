"""mmengine metric wrapping the recalls of a scored test set."""

from __future__ import annotations

from collections.abc import Sequence

from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.evaluator import BaseMetric

from rsretrieval.registry import METRICS

from ..scores import BlockwiseScores, CandidateScores, DenseScores, RetrievalScores

_SCORE_TYPES = (DenseScores, BlockwiseScores, CandidateScores)


@METRICS.register_module()
class RetrievalRecall(BaseMetric):
    """R@K in both directions and mR of a whole scored test set.

    The retrieval loops pass one result for the whole test set: the scores as
    ``data_samples`` (one :class:`~rsretrieval.evaluation.DenseScores`,
    :class:`~rsretrieval.evaluation.BlockwiseScores` or
    :class:`~rsretrieval.evaluation.CandidateScores`; each ranks itself) and
    the ground truth as ``data_batch`` (``img2txt``, ``txt2img``). Every rank
    holds the same scores, so nothing is gathered: rank 0 computes and
    broadcasts.

    Args:
        ks: The K values.
        prefix: Key prefix (mmengine convention); empty by default so the keys
            read ``i2t_R@1``, ..., ``mR``.
    """

    default_prefix = ''

    def __init__(self, ks: Sequence[int] = (1, 5, 10), prefix: str | None = None, **kwargs) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.ks = tuple(ks)

    def process(self, data_batch: dict, data_samples: Sequence[RetrievalScores]) -> None:
        """Keep each scores result with the ground truth ``data_batch['img2txt']``, ``['txt2img']``."""
        for scores in data_samples:
            if not isinstance(scores, _SCORE_TYPES):
                names = ', '.join(t.__name__ for t in _SCORE_TYPES)
                raise TypeError(f'RetrievalRecall takes one of {names}, got {type(scores).__name__}')
            self.results.append(dict(scores=scores, img2txt=data_batch['img2txt'], txt2img=data_batch['txt2img']))

    def compute_metrics(self, results: list) -> dict[str, float]:
        if len(results) != 1:
            raise ValueError(f'RetrievalRecall expects one whole-test-set result, got {len(results)}')
        r = results[0]
        return r['scores'].recall(r['img2txt'], r['txt2img'], self.ks)

    def evaluate(self, size: int = 1) -> dict[str, float]:
        metrics = [None]
        if is_main_process():
            metrics = [self.compute_metrics(self.results)]
            if self.prefix:
                metrics = [{f'{self.prefix}/{k}': v for k, v in metrics[0].items()}]
        broadcast_object_list(metrics)
        self.results.clear()
        return metrics[0]
