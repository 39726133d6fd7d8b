"""Validation and test loops for retrieval: encode once, score all pairs, rank."""

from __future__ import annotations

import contextlib
import os
import time

import torch
from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop, ValLoop

from rsretrieval.evaluation import chance_recall, format_results_table, recall_at_k, save_similarity
from rsretrieval.registry import LOOPS, RERANKERS
from rsretrieval.utils.precision import PRECISIONS, log_precision, resolve_precision

from .encode import encode_images, encode_texts
from .loader_faults import report_worker_failures, track_workers


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
            build every matrix.
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
        runner, phase = self.runner, self.phase
        runner.call_hook(f'before_{phase}')
        runner.call_hook(f'before_{phase}_epoch')
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.eval()
        dataset = self.dataloader.dataset
        matching = bool(getattr(self.reranker, 'needs_features', False))
        device = model.data_preprocessor.device
        dtype = self._precision(device)
        self.timings, self._clock = {}, time.perf_counter()
        start = self._clock
        with torch.no_grad():
            with self._autocast(device, dtype), report_worker_failures():
                img_feats = encode_images(
                    model,
                    self.dataloader,
                    len(dataset),
                    on_batch=self._iter_hook('before'),
                    progress=self.progress_bar,
                    for_matching=matching,
                    label=phase,
                )
            self._lap('images', device)
            with self._autocast(device, dtype):
                txt_feats = encode_texts(
                    model,
                    dataset.captions,
                    self.text_batch_size,
                    progress=self.progress_bar,
                    for_matching=matching,
                    label=phase,
                )
            if dtype is not None:  # similarities and ranking in fp32
                img_feats, txt_feats = _to_float(img_feats), _to_float(txt_feats)
            self._lap('captions', device)
            # Without a reranker or a saved matrix, embedding scores are ranked block by
            # block: the N_img x N_txt matrix is never held (2.4 GB at RSICD-full size).
            blockwise = (
                self.reranker is None
                and not self.out_file
                and self.full_matrix is not True
                and isinstance(img_feats, torch.Tensor)
            )
            if blockwise:
                shape = (img_feats.shape[0], txt_feats.shape[0])

                def score_block(i0: int, i1: int, t0: int, t1: int) -> torch.Tensor:
                    return model.similarity(img_feats[i0:i1], txt_feats[t0:t1]).cpu()

                result = dict(score_block=score_block, shape=shape, img2txt=dataset.img2txt, txt2img=dataset.txt2img)
            else:
                sims = model.similarity(img_feats, txt_feats, progress=self.progress_bar and is_main_process())
                shape = tuple(sims.shape)
                # a top-K reranker is evaluated from its candidates: no reranked matrices
                sparse = (
                    getattr(self.reranker, 'supports_candidates', False)
                    and not self.out_file
                    and self.full_matrix is not True
                )
                if self.reranker is None:
                    sims_i2t = sims_t2i = sims
                elif sparse:
                    (i2t_idx, _), (t2i_idx, _) = self.reranker.rerank_candidates(sims)
                elif matching:
                    sims_i2t, sims_t2i = self.reranker(sims, model=model, image_feats=img_feats, text_feats=txt_feats)
                else:
                    sims_i2t, sims_t2i = self.reranker(sims)
                if self.reranker is not None and sparse:
                    result = dict(sims=sims, i2t_candidates=i2t_idx, t2i_candidates=t2i_idx)
                else:
                    result = dict(sims_i2t=sims_i2t, sims_t2i=sims_t2i)
                result.update(img2txt=dataset.img2txt, txt2img=dataset.txt2img)
        self._lap('scores', device)
        self.evaluator.process(data_samples=[result], data_batch=None)
        metrics = self.evaluator.evaluate(1)
        self._lap('metrics', device)
        self.timings['total'] = time.perf_counter() - start
        rows = {'chance': chance_recall(dataset.img2txt)}
        if self.reranker is not None:
            ks = getattr(self.evaluator.metrics[0], 'ks', (1, 5, 10))
            raw = recall_at_k(sims, sims, dataset.img2txt, dataset.txt2img, ks)
            rows[f'{phase} (raw)'] = raw
            rows[f'{phase} + {type(self.reranker).__name__}'] = metrics
            metrics = {**metrics, **{f'raw/{k}': v for k, v in raw.items()}}
        else:
            rows[phase] = metrics
        if is_main_process():
            table = format_results_table(rows)
            label = f' [{self.label}]' if self.label else ''
            runner.logger.info(f'{phase} retrieval results{label} ({shape[0]} images, {shape[1]} captions):\n{table}')
            t = self.timings
            runner.logger.info(
                f'{phase} time: {t["total"]:.2f} s (images {t["images"]:.2f}, captions {t["captions"]:.2f}, '
                f'scores{" + " + type(self.reranker).__name__ if self.reranker else ""} {t["scores"]:.2f}, '
                f'metrics {t["metrics"]:.2f})'
            )
            if self.out_file:
                self._save(sims, sims_i2t, sims_t2i, dataset)
        runner.call_hook(f'after_{phase}_epoch', metrics=metrics)
        runner.call_hook(f'after_{phase}')
        return metrics

    def _save(self, sims, sims_i2t, sims_t2i, dataset) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.out_file)), exist_ok=True)
        extra = {}
        if self.reranker is not None:
            extra = dict(sims_i2t=sims_i2t.cpu().numpy(), sims_t2i=sims_t2i.cpu().numpy())
        save_similarity(
            self.out_file,
            sims.cpu().numpy(),
            dataset.img2txt,
            dataset.txt2img,
            image_paths=dataset.image_paths,
            captions=dataset.captions,
            **extra,
        )
        self.runner.logger.info(f'Similarity matrix saved to {self.out_file}')


def _to_float(feats):
    if isinstance(feats, dict):
        return {k: v.float() if v.is_floating_point() else v for k, v in feats.items()}
    return feats.float()


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
