"""Validation and test loops for retrieval: encode once, score all pairs, rank, report."""

from __future__ import annotations

import contextlib
import os
import time

import torch
from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop, ValLoop

from rsretrieval.evaluation import (
    RetrievalScores,
    check_parts,
    metrics_over_parts,
    part_ground_truth,
    save_scores,
)
from rsretrieval.evaluation.metrics.retrieval_recall import SHARED_PREFIX
from rsretrieval.evaluation.parts import Part
from rsretrieval.evaluation.similarity_io import reranker_record
from rsretrieval.models.retrievers import BaseRetriever
from rsretrieval.registry import LOOPS, RERANKERS
from rsretrieval.utils.precision import PRECISIONS, log_precision, resolve_precision

from .encode import Features, encode_images, encode_texts, features_to_float
from .loader_faults import report_worker_failures, track_workers
from .results_report import parts_message, results_message, results_rows, timings_message
from .scoring import choose_scoring, score_pairs

#: Key prefix of a reranked run's raw metrics (``raw/mR``, ``raw/equiv/mR``).
RAW_PREFIX = 'raw/'


def slice_features(feats: Features, ids: range) -> Features:
    """Rows ``ids`` (a step-1 range) of a feature tensor, or of each tensor of a dict of them."""
    if isinstance(feats, dict):
        return {k: v[ids.start : ids.stop] for k, v in feats.items()}
    return feats[ids.start : ids.stop]


class _RetrievalEvaluation:
    """What the val and test loops share; ``phase`` is ``'val'`` or ``'test'``.

    Args:
        runner: The runner.
        dataloader: Test-mode dataloader (one item per image).
        evaluator: Evaluator with a ``RetrievalRecall`` metric; it gets the
            dataset's ``img2txt``, ``txt2img`` and ``captions`` as ``data_batch``.
        text_batch_size: Captions encoded per forward pass.
        reranker: ``RERANKERS`` config applied to the similarity matrix
            (``None``: raw similarities). With a reranker the returned
            metrics are the reranked ones, the raw ones are added under
            ``raw/<key>`` (``raw/mR``, ``raw/equiv/mR``; the ``shared/``
            counts once, unprefixed), and the printed table shows both.
        progress_bar: Show progress bars while encoding (default: on for
            test, off for validation during training).
        out_file: Save the similarity matrix and ground truth to this ``.npz``
            (refused for a dataset with ``parts``: one file holds one matrix).
        full_matrix: ``None`` (default): build the whole similarity matrix only
            when something needs it (a reranker, ``out_file``, a model that
            scores pairs with a match head) and otherwise rank block by block
            (memory ``1024 x max(N_img, N_txt)`` scores instead of
            ``N_img x N_txt``); a top-K reranker (SMR, MR) then returns its
            candidates only, not two reranked matrices. ``True``: always
            build every matrix. :func:`~rsretrieval.engine.loops.scoring.choose_scoring`
            gives every case and its reason.
        autocast: ``'auto'`` (bf16 where the device runs it natively, else
            full precision; see :func:`~rsretrieval.utils.resolve_precision`),
            ``'bfloat16'`` or ``'float16'``: encode under ``torch.autocast``
            (the embeddings are returned in fp32, the similarities and ranking
            stay fp32); ``None`` or ``'float32'``: full precision.
        label: A note printed with the results table, for a protocol whose
            numbers must not be mistaken for others (e.g. a checkpoint
            selected on the test split).

    After :meth:`run`, ``timings`` holds the seconds of each phase (``images``:
    loading, decoding and encoding every image; ``captions``; ``scores``: the
    similarity matrix and the reranker; ``metrics``; ``total``); they are logged.

    A dataset with a ``parts`` attribute (a combined dataset: a sequence of
    parts with ``name``, ``images`` and ``captions``, ranges of global ids; see
    :func:`~rsretrieval.evaluation.check_parts`) is encoded once, then each
    part is scored and ranked on its own against its own ground truth, as if
    evaluated alone, and gets its own table. The returned metrics are every
    part's as ``<part>/<key>`` and, unprefixed, the mean over the parts
    (:func:`~rsretrieval.evaluation.metrics_over_parts`): ``mR``, which
    best-checkpoint selection reads, is the mean of the parts' ``mR``.

    A loader worker that dies while the images are encoded raises a one-line
    :class:`~rsretrieval.engine.loops.loader_faults.LoaderWorkerError` naming the
    sample and image file it was loading.
    """

    phase = 'val'

    def __init__(
        self,
        runner,
        dataloader,
        evaluator,
        text_batch_size: int = 256,
        reranker: dict | None = None,
        progress_bar: bool | None = None,
        out_file: str | None = None,
        full_matrix: bool | None = None,
        autocast: str | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(runner, dataloader, evaluator)
        self.label = label
        if autocast is not None and autocast not in PRECISIONS:
            raise ValueError(f'autocast must be None or one of {PRECISIONS}, got {autocast!r}')
        self.autocast = autocast
        self.timings: dict[str, float] = {}
        # its own generator: evaluating must not advance torch's global generator
        # (a resumed run would otherwise draw different dropout, masks and negatives)
        self.dataloader.generator = torch.Generator().manual_seed(0)
        track_workers(self.dataloader, self.phase)  # a worker that dies is then reported with its sample
        self.text_batch_size = text_batch_size
        self.reranker = RERANKERS.build(reranker) if reranker else None
        self.reranker_record = reranker_record(reranker, self.reranker) if reranker else None  # for out_file
        # a reranker that reads the match head's inputs needs them from the encoders
        self.for_matching = bool(getattr(self.reranker, 'needs_features', False))
        self.progress_bar = self.phase == 'test' if progress_bar is None else progress_bar
        self.out_file = out_file
        self.full_matrix = full_matrix
        self.parts = self._check_parts()  # here, not in run(): a bad dataset fails before any training

    def _iter_hook(self, stage: str):
        def call(batch_idx: int, data_batch: dict) -> None:
            self.runner.call_hook(f'{stage}_{self.phase}_iter', batch_idx=batch_idx, data_batch=data_batch)

        return call

    def _precision(self, device: torch.device) -> torch.dtype | None:
        """The encoders' autocast dtype on ``device`` (None: full precision), logged once."""
        choice = resolve_precision(self.autocast, device)
        if self.autocast is not None:
            log_precision(choice, device, f'{self.phase} encoding')
        return choice.dtype

    @staticmethod
    def _autocast(device: torch.device, dtype: torch.dtype | None):
        return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)

    def _check_parts(self) -> list[Part] | None:
        """The dataset's validated ``parts`` (``None``: the dataset is one test set)."""
        dataset = self.dataloader.dataset
        parts = getattr(dataset, 'parts', None)
        if parts is None:
            return None
        try:
            parts = check_parts(parts, dataset.img2txt, dataset.txt2img)
        except ValueError as err:
            raise ValueError(f'{self.phase} dataset {type(dataset).__name__}: {err}') from None
        if self.out_file:
            names = ', '.join(p.name for p in parts)
            raise ValueError(
                f'{self.phase}_cfg.out_file={self.out_file!r}: the {self.phase} dataset {type(dataset).__name__} '
                f'has {len(parts)} parts ({names}), each ranked on its own, and one file holds one matrix; '
                "evaluate a part's own dataset to save its matrix, or drop out_file"
            )
        return parts

    def _lap(self, name: str, device: torch.device) -> None:
        """Close the phase ``name``: add its seconds, once the device has finished it (parts add up)."""
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._clock
        self._clock = now

    def run(self) -> dict:
        """Hooks, encode images, encode captions, then score, rank and report (each part), save, hooks."""
        runner, phase = self.runner, self.phase
        runner.call_hook(f'before_{phase}')
        runner.call_hook(f'before_{phase}_epoch')
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.eval()
        device = model.data_preprocessor.device
        dtype = self._precision(device)
        self.timings, self._clock = {}, time.perf_counter()
        start = self._clock
        with torch.no_grad():
            img_feats = self._encode_images(model, dtype)  # (N_img, ...), every rank
            self._lap('images', device)
            txt_feats = self._encode_captions(model, dtype)  # (N_txt, ...)
            self._lap('captions', device)
        if self.parts is None:
            dataset = self.dataloader.dataset
            ground_truth = dict(img2txt=dataset.img2txt, txt2img=dataset.txt2img, captions=dataset.captions)
            scores, metrics = self._evaluate(model, img_feats, txt_feats, ground_truth)
        else:  # out_file was refused for parts (see _check_parts): nothing to save
            scores, metrics = None, self._evaluate_parts(model, img_feats, txt_feats)
        self.timings['total'] = time.perf_counter() - start
        if is_main_process():
            reranker_name = None if self.reranker is None else type(self.reranker).__name__
            runner.logger.info(timings_message(phase, self.timings, reranker_name))
        if scores is not None and self.out_file and is_main_process():
            self._save(scores)
        runner.call_hook(f'after_{phase}_epoch', metrics=metrics)
        runner.call_hook(f'after_{phase}')
        return metrics

    def _evaluate(
        self,
        model: BaseRetriever,
        img_feats: Features,
        txt_feats: Features,
        ground_truth: dict,
        part: str | None = None,
    ) -> tuple[RetrievalScores, dict[str, float]]:
        """Score one test set (the whole dataset or a ``part``), rank it, log its table: its scores and metrics."""
        device = model.data_preprocessor.device
        with torch.no_grad():
            scores = self._score(model, img_feats, txt_feats)
        self._lap('scores', device)
        metrics = self._metrics(scores, ground_truth)
        self._lap('metrics', device)
        if is_main_process():
            self.runner.logger.info(self._results_message(scores, metrics, ground_truth, part))
        return scores, metrics

    def _evaluate_parts(self, model: BaseRetriever, img_feats: Features, txt_feats: Features) -> dict[str, float]:
        """Each part scored and ranked on its own; its metrics as ``<part>/<key>``, their means unprefixed."""
        dataset = self.dataloader.dataset
        per_part = {}
        for part in self.parts:
            ground_truth = part_ground_truth(part, dataset.img2txt, dataset.txt2img, dataset.captions)
            part_images, part_captions = (
                slice_features(img_feats, part.images),
                slice_features(txt_feats, part.captions),
            )
            _, per_part[part.name] = self._evaluate(model, part_images, part_captions, ground_truth, part.name)
        metrics = metrics_over_parts(per_part)
        if is_main_process():
            self.runner.logger.info(parts_message(self.phase, per_part, metrics))
        return metrics

    def _encode_images(self, model: BaseRetriever, dtype: torch.dtype | None) -> Features:
        """Every image's features, placed by global index; fp32 when encoded under autocast."""
        with self._autocast(model.data_preprocessor.device, dtype), report_worker_failures():
            feats = encode_images(
                model,
                self.dataloader,
                len(self.dataloader.dataset),
                on_batch=self._iter_hook('before'),
                progress=self.progress_bar,
                for_matching=self.for_matching,
                label=self.phase,
            )
        return feats if dtype is None else features_to_float(feats)  # similarities and ranking in fp32

    def _encode_captions(self, model: BaseRetriever, dtype: torch.dtype | None) -> Features:
        """Every caption's features, in caption order; fp32 when encoded under autocast."""
        with self._autocast(model.data_preprocessor.device, dtype):
            feats = encode_texts(
                model,
                self.dataloader.dataset.captions,
                self.text_batch_size,
                progress=self.progress_bar,
                for_matching=self.for_matching,
                label=self.phase,
            )
        return feats if dtype is None else features_to_float(feats)

    def _score(self, model: BaseRetriever, img_feats: Features, txt_feats: Features) -> RetrievalScores:
        """Every pair's score, held the one way :func:`choose_scoring` picks for this run."""
        plain_features = isinstance(img_feats, torch.Tensor)
        scoring = choose_scoring(self.reranker, self.out_file, self.full_matrix, plain_features)
        progress = self.progress_bar and is_main_process()
        return score_pairs(scoring, model, img_feats, txt_feats, self.reranker, progress)

    def _metric_values(self, scores: RetrievalScores, ground_truth: dict) -> dict[str, float]:
        self.evaluator.process(data_samples=[scores], data_batch=ground_truth)
        return self.evaluator.evaluate(1)

    def _metrics(self, scores: RetrievalScores, ground_truth: dict) -> dict[str, float]:
        """The evaluator's metrics of ``scores``; with a reranker, those of the raw scores added as ``raw/<key>``."""
        metrics = self._metric_values(scores, ground_truth)
        if self.reranker is None:
            return metrics
        raw = self._metric_values(scores.raw, ground_truth)
        # the shared-caption counts describe the captions, not the scores: once, unprefixed
        return {**metrics, **{f'{RAW_PREFIX}{k}': v for k, v in raw.items() if SHARED_PREFIX not in k}}

    def _results_message(
        self, scores: RetrievalScores, metrics: dict[str, float], ground_truth: dict, part: str | None
    ) -> str:
        """The results table of one test set: chance, then standard and caption-equivalent rows."""
        reranker_name = None if self.reranker is None else type(self.reranker).__name__
        raw = None
        if self.reranker is not None:
            raw = {k.removeprefix(RAW_PREFIX): v for k, v in metrics.items() if k.startswith(RAW_PREFIX)}
        rows = results_rows(self.phase, metrics, ground_truth['img2txt'], raw, reranker_name)
        return results_message(self.phase, rows, scores.shape, self.label, shared=metrics, part=part)

    def _save(self, scores: RetrievalScores) -> None:
        """Write the similarities (:func:`~rsretrieval.evaluation.save_scores`: dense results only)."""
        dataset = self.dataloader.dataset
        os.makedirs(os.path.dirname(os.path.abspath(self.out_file)), exist_ok=True)
        save_scores(
            self.out_file,
            scores,
            dataset.img2txt,
            dataset.txt2img,
            image_paths=dataset.image_paths,
            captions=dataset.captions,
            reranker=self.reranker_record,
        )
        self.runner.logger.info(f'Similarity matrix saved to {self.out_file}')


@LOOPS.register_module()
class RetrievalValLoop(_RetrievalEvaluation, ValLoop):
    """Validation: encode every image and caption once, then R@K and mR.

    Arguments as for ``_RetrievalEvaluation``.
    """

    phase = 'val'


@LOOPS.register_module()
class RetrievalTestLoop(_RetrievalEvaluation, TestLoop):
    """Test: as :class:`RetrievalValLoop`, with progress bars on by default."""

    phase = 'test'
