"""An on-disk index of image embeddings for text-to-image search over an archive.

Folder layout (no pickle anywhere: JSON, ``.npy`` read with ``allow_pickle=False``,
and faiss's own binary format)::

    meta.json             format version, embedding width, image root, the model,
                          the files left out as unreadable (``skipped``)
    shard_00000.json      image paths of the shard, relative to the image root
    shard_00000.npy       (n, E) float32 L2-normalised embeddings, same order
    ann.faiss             optional approximate-search index over all shards

Every file is written atomically (:func:`~rsretrieval.utils.atomic_files.atomic_write`),
a shard's ``.npy`` after its ``.json``, so an interrupted indexing run leaves only
complete shards and resumes after them.
Shards may hold any number of images: an interrupted run saves the images it
had encoded as a shorter shard.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rsretrieval.datasets.transforms import read_rgb
from rsretrieval.utils.atomic_files import atomic_write, atomic_write_with

FORMAT_VERSION = 1
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.tif', '.tiff')


class ArchiveIndexError(RuntimeError):
    """The index folder is inconsistent or belongs to another model."""


def find_images(root: str | os.PathLike, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[str]:
    """Image files under ``root``, recursively: sorted POSIX paths relative to ``root``.

    Raises:
        NotADirectoryError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f'image folder not found: {root}')
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            if name.lower().endswith(extensions):
                found.append((Path(folder) / name).relative_to(root).as_posix())
    return sorted(found)


def unreadable_images(
    root: str | os.PathLike,
    paths: Sequence[str],
    decode: bool = False,
    on_checked: Callable[[int], None] | None = None,
) -> list[tuple[str, str]]:
    """The files of ``paths`` (relative to ``root``) that cannot be read as images.

    Args:
        root: The folder ``paths`` are relative to.
        paths: The files to check.
        decode: Decode every image as indexing does (slow, finds truncated
            files too) rather than read its header only (fast: finds files that
            are empty, not images, of an unknown format or not readable).
        on_checked: Called with 1 after each file (progress reporting).

    Returns:
        ``(path, reason)`` for every unreadable file, in the order of ``paths``.
    """
    problems = []
    for path in paths:
        full = str(Path(root) / path)
        try:
            if decode:
                read_rgb(full)
            else:
                with Image.open(full) as image:
                    if 0 in image.size:
                        raise OSError(f'the image has size {image.size}')
        except Exception as err:  # PIL raises many types for a broken file
            problems.append((path, unreadable_reason(err, full)))
        if on_checked is not None:
            on_checked(1)
    return problems


def unreadable_reason(err: BaseException, full_path: str) -> str:
    """``err``'s message without the file name it repeats (the report names the file)."""
    text = str(err).strip()
    message = text.splitlines()[-1] if text else type(err).__name__
    for prefix in ('cannot load image', 'Cannot decode image'):
        message = message.removeprefix(f'{prefix} {full_path}: ')
    return message.replace(f" '{full_path}'", '').replace(full_path, 'the file') or type(err).__name__


class ArchiveIndex:
    """Embeddings of an image archive, stored in shards, searchable exactly or with faiss.

    Args:
        folder: The index folder (must hold ``meta.json``; see :meth:`create`).
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        meta_file = self.folder / 'meta.json'
        if not meta_file.is_file():
            raise FileNotFoundError(f'{self.folder} is not an rsretrieval index (no meta.json)')
        self.meta = json.loads(meta_file.read_text(encoding='utf-8'))
        if self.meta.get('format_version') != FORMAT_VERSION:
            raise ArchiveIndexError(
                f'{meta_file}: format version {self.meta.get("format_version")}, this library reads '
                f'{FORMAT_VERSION}; rebuild the index'
            )
        self._embeddings: np.ndarray | None = None
        self._ann = None  # the faiss index of ann.faiss, read on first use

    # ------------------------------------------------------------------ building
    @classmethod
    def create(
        cls, folder: str | os.PathLike, image_root: str | os.PathLike, embed_dim: int, model: dict
    ) -> ArchiveIndex:
        """Open ``folder`` to add to it, creating it when new.

        An existing index must describe the same image root, width and model
        (``model['checkpoint_sha256']``): embeddings of two models cannot share
        an index.
        """
        folder = Path(folder)
        meta = dict(
            format_version=FORMAT_VERSION,
            image_root=str(Path(image_root).resolve()),
            embed_dim=int(embed_dim),
            model=model,
        )
        meta_file = folder / 'meta.json'
        if meta_file.is_file():
            index = cls(folder)
            for key in ('image_root', 'embed_dim'):
                if index.meta[key] != meta[key]:
                    raise ArchiveIndexError(
                        f'{meta_file}: {key} is {index.meta[key]!r}, not {meta[key]!r}; use another folder'
                    )
            if index.meta['model'].get('checkpoint_sha256') != model.get('checkpoint_sha256'):
                raise ArchiveIndexError(f'{meta_file} was built with another checkpoint; use another folder or rebuild')
            return index
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(meta_file, json.dumps(meta, indent=1))
        return cls(folder)

    @property
    def skipped(self) -> list[dict]:
        """Files left out as unreadable by the last ``index --skip-unreadable``: ``[{'path', 'reason'}]``."""
        return list(self.meta.get('skipped', []))

    def set_skipped(self, skipped: Sequence[tuple[str, str]]) -> None:
        """Record the ``(path, reason)`` of the files left out as unreadable in ``meta.json``."""
        entries = [dict(path=path, reason=reason) for path, reason in skipped]
        if entries == self.meta.get('skipped', []):
            return
        self.meta['skipped'] = entries
        atomic_write(self.folder / 'meta.json', json.dumps(self.meta, indent=1))

    def _shards(self) -> list[Path]:
        return sorted(self.folder.glob('shard_*.npy'))

    def add(self, paths: list[str], embeddings: np.ndarray | torch.Tensor) -> None:
        """Append one shard; removes the approximate index, which no longer covers everything."""
        emb = embeddings.detach().cpu().numpy() if isinstance(embeddings, torch.Tensor) else np.asarray(embeddings)
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        if emb.shape != (len(paths), self.meta['embed_dim']):
            raise ValueError(f'expected ({len(paths)}, {self.meta["embed_dim"]}) embeddings, got {emb.shape}')
        stem = self.folder / f'shard_{len(self._shards()):05d}'
        atomic_write(stem.with_suffix('.json'), json.dumps(paths))
        atomic_write_with(stem.with_suffix('.npy'), lambda f: np.save(f, emb, allow_pickle=False), emb.nbytes)
        (self.folder / 'ann.faiss').unlink(missing_ok=True)
        self._embeddings = self._ann = None

    def build_ann(self, kind: str = 'hnsw', hnsw_m: int = 32) -> None:
        """Write an approximate index (``'hnsw'``) or faiss's exact one (``'flat'``) over all shards."""
        import faiss

        emb = self.embeddings()
        if kind == 'hnsw':
            index = faiss.IndexHNSWFlat(emb.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
        elif kind == 'flat':
            index = faiss.IndexFlatIP(emb.shape[1])
        else:
            raise ValueError(f"kind must be 'hnsw' or 'flat', got {kind!r}")
        index.add(np.ascontiguousarray(emb))
        atomic_write_with(
            self.folder / 'ann.faiss', lambda f: faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))
        )
        self._ann = None

    # ------------------------------------------------------------------- reading
    def paths(self) -> list[str]:
        """Indexed image paths, relative to the image root, in embedding order."""
        out: list[str] = []
        for shard in self._shards():
            names = json.loads(shard.with_suffix('.json').read_text(encoding='utf-8'))
            out.extend(names)
        return out

    def absolute_path(self, relative: str) -> str:
        return str(Path(self.meta['image_root']) / relative)

    def embeddings(self) -> np.ndarray:
        """All embeddings ``(N, E)`` float32, shard after shard."""
        if self._embeddings is None:
            parts = []
            for shard in self._shards():
                emb = np.load(shard, allow_pickle=False)
                names = json.loads(shard.with_suffix('.json').read_text(encoding='utf-8'))
                if emb.shape != (len(names), self.meta['embed_dim']):
                    raise ArchiveIndexError(f'{shard}: shape {emb.shape} does not match its {len(names)} paths')
                parts.append(emb)
            dim = self.meta['embed_dim']
            self._embeddings = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
        return self._embeddings

    def __len__(self) -> int:
        return len(self.embeddings())

    @property
    def has_ann(self) -> bool:
        return (self.folder / 'ann.faiss').is_file()

    def search_backend(self, backend: str = 'auto') -> str:
        """``'exact'`` or ``'faiss'``: ``backend`` checked, ``'auto'`` meaning faiss when the index has one.

        Raises:
            ValueError: ``backend`` is not ``'auto'``, ``'exact'`` or ``'faiss'``.
            ArchiveIndexError: ``'faiss'`` without an ``ann.faiss``.
        """
        if backend not in ('auto', 'exact', 'faiss'):
            raise ValueError(f"backend must be 'auto', 'exact' or 'faiss', got {backend!r}")
        if backend == 'auto':
            return 'faiss' if self.has_ann else 'exact'
        if backend == 'faiss' and self._ann is None and not self.has_ann:
            raise ArchiveIndexError(f'{self.folder} has no ann.faiss: index with --ann hnsw (or flat)')
        return backend

    def ann(self):
        """The faiss index of ``ann.faiss``, read once.

        Raises:
            ArchiveIndexError: There is none, or it does not cover the shards.
        """
        if self._ann is None:
            import faiss

            self.search_backend('faiss')
            ann = faiss.read_index(str(self.folder / 'ann.faiss'))
            if ann.ntotal != len(self):
                raise ArchiveIndexError(f'{self.folder}/ann.faiss covers {ann.ntotal} images, the shards {len(self)}')
            self._ann = ann
        return self._ann

    def search(self, queries: np.ndarray | torch.Tensor, topk: int = 10, backend: str = 'auto') -> tuple:
        """The ``topk`` most similar images of each query.

        Args:
            queries: ``(Q, E)`` L2-normalised query embeddings.
            topk: Results per query (capped at the index size).
            backend: ``'exact'`` (cosine against every embedding, in chunks),
                ``'faiss'`` (the ``ann.faiss`` index) or ``'auto'`` (faiss when
                the index has one, exact otherwise).

        Returns:
            ``(scores, ids)``, both ``(Q, k)`` numpy arrays, best first; ``ids``
            index :meth:`paths` (faiss pads with -1 when it finds fewer than ``k``).
        """
        q = queries.detach().cpu().numpy() if isinstance(queries, torch.Tensor) else np.asarray(queries)
        q = np.ascontiguousarray(q, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.meta['embed_dim']:
            raise ValueError(f'queries must be (Q, {self.meta["embed_dim"]}), got {q.shape}')
        if len(self) == 0:
            raise ArchiveIndexError(f'{self.folder} holds no image')
        k = min(topk, len(self))
        if self.search_backend(backend) == 'faiss':
            return ann_search(self.ann(), q, k)
        return exact_search(self.embeddings(), q, k)


def ann_search(ann, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss's ``(scores, ids)`` for ``queries``; an HNSW index explores at least ``4 k`` candidates.

    The search parameters go with the call: the index, shared by the threads of
    the search server, is not modified.
    """
    import faiss

    if hasattr(ann, 'hnsw'):
        params = faiss.SearchParametersHNSW(efSearch=max(ann.hnsw.efSearch, 4 * k))
        return ann.search(queries, k, params=params)
    return ann.search(queries, k)


def exact_search(embeddings: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best ``(scores, ids)`` of cosine similarity against every embedding, best first.

    Scores are computed 65536 embeddings at a time, so memory stays at ``Q x 65536``.
    """
    emb, qt = torch.from_numpy(embeddings), torch.from_numpy(queries)
    best_scores = torch.full((len(qt), 0), -float('inf'))
    best_ids = torch.zeros((len(qt), 0), dtype=torch.long)
    for start in range(0, len(emb), 65536):
        sims = qt @ emb[start : start + 65536].T
        scores = torch.cat([best_scores, sims], dim=1)
        ids = torch.cat([best_ids, torch.arange(start, start + sims.shape[1]).expand(len(qt), -1)], dim=1)
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
        best_scores, best_ids = scores.gather(1, order), ids.gather(1, order)
    return best_scores.numpy(), best_ids.numpy()
