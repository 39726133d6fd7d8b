"""Validation and test loops for retrieval: encode once, score all pairs, rank, report."""

from __future__ import annotations

import contextlib
import os
import time

import torch
from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop, ValLoop

from rsretrieval.evaluation import RetrievalScores, save_scores
from rsretrieval.evaluation.similarity_io import reranker_record
from rsretrieval.models.retrievers import BaseRetriever
from rsretrieval.registry import LOOPS, RERANKERS
from rsretrieval.utils.precision import PRECISIONS, log_precision, resolve_precision

from .encode import Features, encode_images, encode_texts, features_to_float
from .loader_faults import report_worker_failures, track_workers
from .results_report import results_message, results_rows, timings_message
from .scoring import choose_scoring, score_pairs


class _RetrievalEvaluation:
    """What the val and test loops share; ``phase`` is ``'val'`` or ``'test'``.

    Args:
        runner: The runner.
        dataloader: Test-mode dataloader (one item per image).
        evaluator: Evaluator with a ``RetrievalRecall`` metric.
        text_batch_size: Captions encoded per forward pass.
        reranker: ``RERANKERS`` config applied to the similarity matrix
            (``None``: raw similarities). With a reranker the returned
            metrics are the reranked ones, the raw ones are added under
            ``raw/<key>``, and the printed table shows both.
        progress_bar: Show progress bars while encoding (default: on for
            test, off for validation during training).
        out_file: Save the similarity matrix and ground truth to this ``.npz``.
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

    def _lap(self, name: str, device: torch.device) -> None:
        """Close the phase ``name``: its seconds once the device has finished it."""
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        now = time.perf_counter()
        self.timings[name] = now - self._clock
        self._clock = now

    def run(self) -> dict:
        """Hooks, encode images, encode captions, score, metrics, report, save, hooks."""
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
            scores = self._score(model, img_feats, txt_feats)
        self._lap('scores', device)
        metrics = self._metrics(scores)
        self._lap('metrics', device)
        self.timings['total'] = time.perf_counter() - start
        metrics = self._report(scores, metrics)
        if self.out_file and is_main_process():
            self._save(scores)
        runner.call_hook(f'after_{phase}_epoch', metrics=metrics)
        runner.call_hook(f'after_{phase}')
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

    def _metrics(self, scores: RetrievalScores) -> dict[str, float]:
        """The evaluator's metrics of ``scores`` against the dataset's ground truth."""
        dataset = self.dataloader.dataset
        ground_truth = dict(img2txt=dataset.img2txt, txt2img=dataset.txt2img)
        self.evaluator.process(data_samples=[scores], data_batch=ground_truth)
        return self.evaluator.evaluate(1)

    def _report(self, scores: RetrievalScores, metrics: dict[str, float]) -> dict[str, float]:
        """Log the results table and the timings; with a reranker, add the raw metrics as ``raw/<key>``."""
        dataset = self.dataloader.dataset
        reranker_name = None if self.reranker is None else type(self.reranker).__name__
        raw = None
        if self.reranker is not None:  # the raw row beside the reranked one
            ks = getattr(self.evaluator.metrics[0], 'ks', (1, 5, 10))
            raw = scores.raw.recall(dataset.img2txt, dataset.txt2img, ks)
        rows = results_rows(self.phase, metrics, dataset.img2txt, raw, reranker_name)
        if is_main_process():
            logger = self.runner.logger
            logger.info(results_message(self.phase, rows, scores.shape, self.label))
            logger.info(timings_message(self.phase, self.timings, reranker_name))
        if raw is None:
            return metrics
        return {**metrics, **{f'raw/{k}': v for k, v in raw.items()}}

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
