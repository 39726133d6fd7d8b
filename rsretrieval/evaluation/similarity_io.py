"""Saving and loading similarity matrices with their ground truth (``.npz``, no pickle)."""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .scores import DenseScores

#: The ``reranker`` of a file of raw scores.
NO_RERANKER: dict[str, Any] = {'type': None}


def save_similarity(
    path: str | os.PathLike,
    sims: np.ndarray,
    img2txt: Sequence[Sequence[int]],
    txt2img: Sequence[int],
    image_paths: Sequence[str] | None = None,
    captions: Sequence[str] | None = None,
    *,
    reranker: Mapping[str, Any] | None = None,
    **extra: np.ndarray,
) -> None:
    """Write ``sims`` ``(N_img, N_txt)`` and the ground truth to ``path``.

    ``img2txt`` is stored as CSR arrays (``img2txt_offsets``, ``img2txt_indices``)
    so that the file loads with ``allow_pickle=False``. ``extra`` arrays (e.g.
    reranked matrices) are stored under their keyword names. ``reranker`` (see
    :func:`reranker_record`) is stored as JSON text under ``reranker``.
    """
    offsets = np.cumsum([0] + [len(c) for c in img2txt]).astype(np.int64)
    arrays = dict(
        sims=np.asarray(sims, dtype=np.float32),
        txt2img=np.asarray(txt2img, dtype=np.int64),
        img2txt_offsets=offsets,
        img2txt_indices=np.asarray([t for c in img2txt for t in c], dtype=np.int64),
        **{k: np.asarray(v) for k, v in extra.items()},
    )
    if image_paths is not None:
        arrays['image_paths'] = np.asarray(image_paths, dtype=np.str_)
    if captions is not None:
        arrays['captions'] = np.asarray(captions, dtype=np.str_)
    if reranker is not None:
        arrays['reranker'] = np.asarray(json.dumps(dict(reranker), default=repr), dtype=np.str_)
    np.savez(path, **arrays)


def save_scores(
    path: str | os.PathLike,
    scores: DenseScores,
    img2txt: Sequence[Sequence[int]],
    txt2img: Sequence[int],
    image_paths: Sequence[str] | None = None,
    captions: Sequence[str] | None = None,
    reranker: Mapping[str, Any] | None = None,
) -> None:
    """:func:`save_similarity` of a dense result: ``sims`` and, when a reranker
    produced them, ``sims_i2t`` and ``sims_t2i``, with ``reranker``: the
    :func:`reranker_record` of the reranker that produced them (None: raw scores).

    Raises:
        TypeError: ``scores`` is not :class:`DenseScores` (block-wise and
            candidate results hold no matrices to write).
    """
    if not isinstance(scores, DenseScores):
        raise TypeError(f'only DenseScores hold the matrices a similarity file stores, got {type(scores).__name__}')
    extra = {}
    if scores.reranked:
        extra = dict(sims_i2t=scores.sims_i2t.cpu().numpy(), sims_t2i=scores.sims_t2i.cpu().numpy())
    sims = scores.sims.cpu().numpy()
    if reranker is not None:
        record = dict(reranker)
    else:  # reranked matrices from a caller that did not say by what: nothing to record
        record = None if scores.reranked else NO_RERANKER
    save_similarity(path, sims, img2txt, txt2img, image_paths=image_paths, captions=captions, reranker=record, **extra)


def reranker_record(cfg: Mapping[str, Any], reranker: object) -> dict[str, Any]:
    """What produced a reranked file: the config's ``type`` and every argument of the
    reranker's constructor, the config's values over the constructor's defaults.

    Args:
        cfg: The reranker's config (``dict(type='SMR', topk=20)``).
        reranker: The reranker built from it; its constructor gives the defaults.
    """
    kind = cfg['type'] if isinstance(cfg['type'], str) else cfg['type'].__name__
    params = inspect.signature(type(reranker)).parameters.values()
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return {'type': kind, **defaults, **{k: v for k, v in cfg.items() if k != 'type'}}


def load_similarity(path: str | os.PathLike) -> dict:
    """Read a file written by :func:`save_similarity`.

    Returns:
        dict with ``sims``, ``txt2img`` (list), ``img2txt`` (list of lists),
        ``reranker`` (its type and arguments as a dict, ``{'type': None}`` for raw
        scores, None for a file saved before the reranker was recorded) and, when
        saved, ``image_paths``, ``captions`` and the extra arrays.
    """
    with np.load(path, allow_pickle=False) as data:
        out = {k: data[k] for k in data.files}
    out['reranker'] = json.loads(str(out['reranker'])) if 'reranker' in out else None
    offsets, indices = out.pop('img2txt_offsets'), out.pop('img2txt_indices')
    out['img2txt'] = [indices[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]
    out['txt2img'] = out['txt2img'].tolist()
    for key in ('image_paths', 'captions'):
        if key in out:
            out[key] = out[key].tolist()
    return out
