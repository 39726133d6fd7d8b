"""Encoding a test set once per modality, with global indices across ranks."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from mmengine.dist import all_gather, get_dist_info
from torch.utils.data import DataLoader

from rsretrieval.models.retrievers import BaseRetriever
from rsretrieval.utils.progress import Progress


def gather_by_index(local: torch.Tensor, indices: torch.Tensor, total: int) -> torch.Tensor:
    """Assemble the rows computed on every rank into one ``(total, ...)`` tensor.

    Each rank passes the rows it computed and their global indices; rows are
    placed by index, so the sampler's order and its padding (repeated indices)
    cannot misalign anything.

    Raises:
        RuntimeError: Some index in ``[0, total)`` was computed by no rank.
    """
    rank, world = get_dist_info()
    if world > 1:
        n = torch.tensor([len(local)], device=local.device)
        sizes = [int(s) for s in all_gather(n)]
        pad = max(sizes) - len(local)
        local = torch.cat([local, local.new_zeros((pad, *local.shape[1:]))])
        indices = torch.cat([indices, indices.new_zeros(pad)])
        local = torch.cat([t[:s] for t, s in zip(all_gather(local), sizes)])
        indices = torch.cat([t[:s] for t, s in zip(all_gather(indices), sizes)])
    out = local.new_zeros((total, *local.shape[1:]))
    seen = torch.zeros(total, dtype=torch.bool, device=local.device)
    out[indices] = local
    seen[indices] = True
    if not bool(seen.all()):
        missing = torch.nonzero(~seen).flatten()[:10].tolist()
        raise RuntimeError(f'{int((~seen).sum())} of {total} items were encoded by no rank, e.g. {missing}')
    return out


Features = torch.Tensor | dict[str, torch.Tensor]


def _concat(parts: list[Features]) -> Features:
    if isinstance(parts[0], dict):
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    return torch.cat(parts)


def features_to_float(feats: Features) -> Features:
    """``feats`` in fp32; integer tensors (a match-head dict's ``mask``) are kept as they are."""
    if isinstance(feats, dict):
        return {k: v.float() if v.is_floating_point() else v for k, v in feats.items()}
    return feats.float()


def gather_features(local: Features, indices: torch.Tensor, total: int) -> Features:
    """:func:`gather_by_index` for a tensor or, key by key, a dict of tensors."""
    if isinstance(local, dict):
        return {k: gather_by_index(v, indices, total) for k, v in local.items()}
    return gather_by_index(local, indices, total)


def encode_images(
    model: BaseRetriever,
    dataloader: DataLoader,
    num_images: int,
    on_batch: Callable[[int, dict], None] | None = None,
    progress: bool = False,
    for_matching: bool = False,
    label: str = 'encoding',
) -> Features:
    """Embed every image of ``dataloader`` once: ``(num_images, ...)`` in image-id order.

    Args:
        model: The (unwrapped) retriever.
        dataloader: Test-mode loader whose items carry ``sample_idx``.
        num_images: Images in the whole dataset (all ranks).
        on_batch: Called as ``on_batch(batch_idx, data_batch)`` before each
            batch is encoded (the loops call mmengine's iteration hooks here).
        progress: Show a progress bar on rank 0; otherwise a log line every
            30 s (only a long encoding writes any).
        for_matching: Use ``model.encode_image_for_matching`` (embeddings and
            the tokens its match head needs) instead of ``encode_image``.
        label: Names the phase in progress lines (``'val'``, ``'test'``).
    """
    rank, world = get_dist_info()
    encode = model.encode_image_for_matching if for_matching else model.encode_image
    bar = Progress(len(dataloader), f'{label}: image batches', bar=progress, enabled=rank == 0)
    feats, indices = [], []
    for batch_idx, data_batch in enumerate(dataloader):
        if on_batch is not None:
            on_batch(batch_idx, data_batch)
        data = model.data_preprocessor(data_batch, False)
        feats.append(encode(data['inputs']))
        indices.append(data['data_samples']['sample_idx'])
        bar.update()
    bar.close()
    device = model.data_preprocessor.device
    local = _concat(feats) if feats else torch.empty(0, 0, device=device)
    idx = torch.cat(indices) if indices else torch.empty(0, dtype=torch.long, device=device)
    return gather_features(local, idx, num_images)


def encode_texts(
    model: BaseRetriever,
    captions: Sequence[str],
    batch_size: int = 256,
    progress: bool = False,
    for_matching: bool = False,
    label: str = 'encoding',
) -> Features:
    """Embed every caption once: ``(len(captions), E)``; ranks split the work.

    ``for_matching`` uses ``model.encode_text_for_matching`` (a dict of features).
    """
    rank, world = get_dist_info()
    encode = model.encode_text_for_matching if for_matching else model.encode_text
    mine = list(range(rank, len(captions), world))
    batches = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
    bar = Progress(len(batches), f'{label}: caption batches', bar=progress, enabled=rank == 0)
    feats = []
    for ids in batches:
        feats.append(encode([captions[i] for i in ids]))
        bar.update()
    bar.close()
    device = model.data_preprocessor.device
    local = _concat(feats) if feats else torch.empty(0, 0, device=device)
    return gather_features(local, torch.tensor(mine, dtype=torch.long, device=device), len(captions))
