"""Scoring an encoded test set: which way (:func:`choose_scoring`), then one typed result (:func:`score_pairs`)."""

from __future__ import annotations

import enum
from collections.abc import Callable

import torch

from rsretrieval.evaluation import BlockwiseScores, CandidateScores, DenseScores, RetrievalScores
from rsretrieval.models.retrievers import BaseRetriever

from .encode import Features

#: A ``RERANKERS`` object: ``reranker(sims, **context) -> (sims_i2t, sims_t2i)``.
Reranker = Callable[..., tuple[torch.Tensor, torch.Tensor]]


class Scoring(enum.Enum):
    """How the scores of every (image, caption) pair are held; each gives one result type."""

    BLOCKWISE = 'blockwise'  # -> BlockwiseScores
    DENSE = 'dense'  # -> DenseScores
    CANDIDATES = 'candidates'  # -> CandidateScores


def choose_scoring(
    reranker: Reranker | None, out_file: str | None, full_matrix: bool | None, plain_features: bool
) -> Scoring:
    """The one way a test set is scored, decided before any score is computed.

    The first case that applies decides:

    1. ``out_file`` -> ``DENSE``: the file stores the whole raw matrix and a
       reranker's two reranked matrices, so they must all exist.
    2. ``full_matrix=True`` -> ``DENSE``: every matrix is asked for (a top-K
       reranker then returns two reranked matrices, not its candidates).
    3. A top-K reranker (``supports_candidates``: SMR, MR) -> ``CANDIDATES``:
       its K reordered candidates per query and the raw matrix give every
       reranked rank, without two more ``N_img x N_txt`` matrices. It reads the
       raw matrix only, whatever else it could use.
    4. Any other reranker -> ``DENSE``: it maps the whole matrix to two
       matrices; one that ``needs_features`` (ITM) gets the model and the
       match-head features with it (see :func:`score_pairs`).
    5. Match-head features (dicts, ``plain_features=False``) -> ``DENSE``:
       every pair runs through the fusion encoder, and block-wise ranking would
       score each pair twice (once per direction).
    6. Otherwise ``BLOCKWISE``: embedding scores are a cheap matrix product,
       recomputed block by block, so the ``N_img x N_txt`` matrix is never
       held (2.4 GB at RSICD-full size).

    Args:
        reranker: The built reranker, or ``None`` for raw similarities.
        out_file: Where the similarities are saved (``None``: not saved).
        full_matrix: ``True`` forces ``DENSE``; ``None`` or ``False`` leaves the choice to the other cases.
        plain_features: Whether the encoders returned tensors (embeddings)
            rather than dicts of match-head features.
    """
    if out_file or full_matrix is True:
        return Scoring.DENSE
    if getattr(reranker, 'supports_candidates', False):
        return Scoring.CANDIDATES
    if reranker is not None or not plain_features:
        return Scoring.DENSE
    return Scoring.BLOCKWISE


def score_pairs(
    scoring: Scoring,
    model: BaseRetriever,
    img_feats: Features,
    txt_feats: Features,
    reranker: Reranker | None = None,
    progress: bool = False,
) -> RetrievalScores:
    """Score every image against every caption the way ``scoring`` says.

    Args:
        scoring: From :func:`choose_scoring`.
        model: The (unwrapped) retriever; ``model.similarity`` scores the pairs.
        img_feats: ``(N_img, ...)`` image features from the encoders.
        txt_feats: ``(N_txt, ...)`` caption features.
        reranker: Applied to the raw matrix (``CANDIDATES``: needs ``rerank_candidates``).
        progress: Show a progress bar while a model scores pairs one by one.
    """
    if scoring is Scoring.BLOCKWISE:
        return blockwise_scores(model, img_feats, txt_feats)
    sims = model.similarity(img_feats, txt_feats, progress=progress)  # (N_img, N_txt), fp32
    if scoring is Scoring.CANDIDATES:
        (i2t_candidates, _), (t2i_candidates, _) = reranker.rerank_candidates(sims)  # (N_img, K), (N_txt, K)
        return CandidateScores(sims, i2t_candidates, t2i_candidates)
    if reranker is None:
        return DenseScores.from_raw(sims)
    context = {}
    if getattr(reranker, 'needs_features', False):
        context = dict(model=model, image_feats=img_feats, text_feats=txt_feats)
    sims_i2t, sims_t2i = reranker(sims, **context)
    return DenseScores(sims, sims_i2t, sims_t2i, reranked=True)


def blockwise_scores(model: BaseRetriever, img_feats: torch.Tensor, txt_feats: torch.Tensor) -> BlockwiseScores:
    """``model.similarity`` of embedding slices, on request; blocks come back on the CPU."""

    def score_block(i0: int, i1: int, t0: int, t1: int) -> torch.Tensor:
        return model.similarity(img_feats[i0:i1], txt_feats[t0:t1]).cpu()  # (i1 - i0, t1 - t0)

    return BlockwiseScores(score_block, (img_feats.shape[0], txt_feats.shape[0]))
