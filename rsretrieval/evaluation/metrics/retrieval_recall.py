"""mmengine metric wrapping the recalls of a scored test set."""

from __future__ import annotations

from collections.abc import Sequence

from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.evaluator import BaseMetric

from rsretrieval.registry import METRICS

from ..caption_equivalence import SharedCaptions, shared_captions
from ..scores import BlockwiseScores, CandidateScores, DenseScores, RetrievalScores

_SCORE_TYPES = (DenseScores, BlockwiseScores, CandidateScores)

#: Key prefix of the caption-equivalent recalls (``equiv/mR``).
EQUIVALENT_PREFIX = 'equiv/'
#: Key prefix of the shared-caption counts (``shared/text_queries``).
SHARED_PREFIX = 'shared/'


def shared_caption_metrics(shared: SharedCaptions) -> dict[str, float]:
    """The counts of :class:`~rsretrieval.evaluation.SharedCaptions` under their metric keys."""
    return {
        f'{SHARED_PREFIX}caption_strings': float(shared.strings),
        f'{SHARED_PREFIX}text_queries': float(shared.text_queries),
        f'{SHARED_PREFIX}image_queries': float(shared.image_queries),
    }


@METRICS.register_module()
class RetrievalRecall(BaseMetric):
    """R@K in both directions and mR of a whole scored test set, standard and caption-equivalent.

    The retrieval loops pass one result for the whole test set: the scores as
    ``data_samples`` (one :class:`~rsretrieval.evaluation.DenseScores`,
    :class:`~rsretrieval.evaluation.BlockwiseScores` or
    :class:`~rsretrieval.evaluation.CandidateScores`; each ranks itself) and
    the ground truth as ``data_batch`` (``img2txt``, ``txt2img``, and
    ``captions``, the dataset's caption strings). Every rank holds the same
    scores, so nothing is gathered: rank 0 computes and broadcasts.

    The returned keys: ``i2t_R@K``, ``t2i_R@K`` and ``mR`` (standard recall,
    what model selection reads); with ``caption_equivalent`` also
    ``equiv/i2t_R@K``, ..., ``equiv/mR`` (:func:`~rsretrieval.evaluation.recall_at_k_equivalent`)
    and the counts ``shared/caption_strings``, ``shared/text_queries``,
    ``shared/image_queries`` (:func:`~rsretrieval.evaluation.shared_captions`).

    Args:
        ks: The K values.
        caption_equivalent: Also report caption-equivalent recall and the
            shared-caption counts (needs ``data_batch['captions']``).
        prefix: Key prefix (mmengine convention); empty by default so the keys
            read ``i2t_R@1``, ..., ``mR``.
    """

    default_prefix = ''

    def __init__(
        self, ks: Sequence[int] = (1, 5, 10), caption_equivalent: bool = True, prefix: str | None = None, **kwargs
    ) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.ks = tuple(ks)
        self.caption_equivalent = caption_equivalent

    def process(self, data_batch: dict, data_samples: Sequence[RetrievalScores]) -> None:
        """Keep each scores result with its ground truth (``img2txt``, ``txt2img``, ``captions`` of ``data_batch``)."""
        for scores in data_samples:
            if not isinstance(scores, _SCORE_TYPES):
                names = ', '.join(t.__name__ for t in _SCORE_TYPES)
                raise TypeError(f'RetrievalRecall takes one of {names}, got {type(scores).__name__}')
        if self.caption_equivalent and data_batch.get('captions') is None:
            raise ValueError(
                "RetrievalRecall(caption_equivalent=True) needs the captions as data_batch['captions'] "
                '(the retrieval loops pass dataset.captions); set caption_equivalent=False for standard recall only'
            )
        for scores in data_samples:
            result = dict(scores=scores, img2txt=data_batch['img2txt'], txt2img=data_batch['txt2img'])
            if self.caption_equivalent:
                result['captions'] = data_batch['captions']
            self.results.append(result)

    def compute_metrics(self, results: list) -> dict[str, float]:
        if len(results) != 1:
            raise ValueError(f'RetrievalRecall expects one whole-test-set result, got {len(results)}')
        r = results[0]
        if not self.caption_equivalent:
            return r['scores'].recall(r['img2txt'], r['txt2img'], self.ks)
        metrics, equivalent = r['scores'].recall_both(r['captions'], r['img2txt'], r['txt2img'], self.ks)
        metrics.update({f'{EQUIVALENT_PREFIX}{k}': v for k, v in equivalent.items()})
        metrics.update(shared_caption_metrics(shared_captions(r['captions'], r['img2txt'], r['txt2img'])))
        return metrics

    def evaluate(self, size: int = 1) -> dict[str, float]:
        metrics = [None]
        if is_main_process():
            metrics = [self.compute_metrics(self.results)]
            if self.prefix:
                metrics = [{f'{self.prefix}/{k}': v for k, v in metrics[0].items()}]
        broadcast_object_list(metrics)
        self.results.clear()
        return metrics[0]
