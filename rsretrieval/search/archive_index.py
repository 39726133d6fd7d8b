"""An on-disk index of image embeddings for text-to-image search over an archive.

Folder layout (no pickle anywhere: JSON, ``.npy`` read with ``allow_pickle=False``,
and faiss's own binary format)::

    meta.json             format version, embedding width, image root, the model,
                          the files left out as unreadable (``skipped``)
    shard_00000.json      image paths of the shard, relative to the image root
    shard_00000.npy       (n, E) float32 L2-normalised embeddings, same order
    ann.faiss             optional faiss index over all shards: HNSW, exact (flat) or
                          compressed (IVF-PQ, see :mod:`.compressed_index`); its
                          kind and parameters are recorded in meta.json (``ann``)

Every file is written atomically (:func:`~rsretrieval.utils.atomic_files.atomic_write`),
a shard's ``.npy`` after its ``.json``, so an interrupted indexing run leaves only
complete shards and resumes after them.
Shards may hold any number of images: an interrupted run saves the images it
had encoded as a shorter shard.

Only exact search and HNSW/flat building read every embedding into memory
(:meth:`ArchiveIndex.embeddings`); the compressed index is built and searched
from memory-mapped shards.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rsretrieval.datasets.transforms import read_rgb
from rsretrieval.utils.atomic_files import atomic_write, atomic_write_with

from .compressed_index import ShardVectors, build_ivfpq, bytes_per_image, is_ivf, ivfpq_params, ivfpq_search

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
        self._vectors: ShardVectors | None = None  # the shards memory-mapped, opened on first use
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
        self._embeddings = self._vectors = self._ann = None

    def build_ann(self, kind: str = 'hnsw', hnsw_m: int = 32) -> None:
        """Write a faiss index over all shards and record its kind and parameters in ``meta.json``.

        Args:
            kind: ``'hnsw'`` (approximate, holds every embedding in memory),
                ``'flat'`` (exact) or ``'ivfpq'`` (compressed: trained on a sample
                and filled shard by shard from memory-mapped shards, parameters
                from :func:`~.compressed_index.ivfpq_params`).
            hnsw_m: Neighbours per node of an HNSW graph.
        """
        import faiss

        if kind == 'ivfpq':
            params = ivfpq_params(len(self), self.meta['embed_dim'])
            index = build_ivfpq(self.vectors(), params)
            info = dict(kind=kind, **params, bytes_per_image=bytes_per_image(params))
        elif kind in ('hnsw', 'flat'):
            emb = self.embeddings()
            if kind == 'hnsw':
                index = faiss.IndexHNSWFlat(emb.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
                info = dict(kind=kind, hnsw_m=hnsw_m)
            else:
                index = faiss.IndexFlatIP(emb.shape[1])
                info = dict(kind=kind)
            index.add(np.ascontiguousarray(emb))
        else:
            raise ValueError(f"kind must be 'hnsw', 'flat' or 'ivfpq', got {kind!r}")
        atomic_write_with(
            self.folder / 'ann.faiss', lambda f: faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))
        )
        self.meta['ann'] = info
        atomic_write(self.folder / 'meta.json', json.dumps(self.meta, indent=1))
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

    def vectors(self) -> ShardVectors:
        """All embeddings as memory-mapped shards: rows are read from disk when used."""
        if self._vectors is None:
            arrays = []
            for shard in self._shards():
                emb = np.load(shard, mmap_mode='r', allow_pickle=False)
                _expect_random_reads(emb)
                if emb.ndim != 2 or emb.shape[1] != self.meta['embed_dim'] or emb.dtype != np.float32:
                    raise ArchiveIndexError(
                        f'{shard}: {emb.dtype} {emb.shape}, not float32 (n, {self.meta["embed_dim"]})'
                    )
                arrays.append(emb)
            self._vectors = ShardVectors(arrays)
        return self._vectors

    def __len__(self) -> int:
        if self._embeddings is not None:
            return len(self._embeddings)
        return len(self.vectors())

    @property
    def has_ann(self) -> bool:
        return (self.folder / 'ann.faiss').is_file()

    @property
    def ann_info(self) -> dict | None:
        """The kind and parameters of ``ann.faiss`` (``meta.json``'s ``ann``), None without one.

        An IVF-PQ index records ``nlist``, ``pq_m``, ``pq_bytes``, ``nprobe``, ``rerank``,
        ``train_size``, ``quantizer`` and ``bytes_per_image``.
        """
        return dict(self.meta['ann']) if self.has_ann and 'ann' in self.meta else None

    def prepare(self, backend: str = 'auto') -> int:
        """Read now what searching with ``backend`` needs, so the first query is as fast as the others.

        Exact search reads every embedding; faiss reads ``ann.faiss`` (and a
        compressed index maps the shards for re-scoring, reading none).

        Returns:
            The number of indexed images.
        """
        if self.search_backend(backend) == 'faiss':
            self.ann()
        else:
            self.embeddings()
        return len(self)

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
            # A compressed index's memory is its codes: no precomputed distance tables.
            ann = faiss.read_index(str(self.folder / 'ann.faiss'), faiss.IO_FLAG_SKIP_PRECOMPUTE_TABLE)
            if ann.ntotal != len(self):
                raise ArchiveIndexError(f'{self.folder}/ann.faiss covers {ann.ntotal} images, the shards {len(self)}')
            self._ann = ann
        return self._ann

    def search(
        self,
        queries: np.ndarray | torch.Tensor,
        topk: int = 10,
        backend: str = 'auto',
        nprobe: int | None = None,
        rerank: int | None = None,
    ) -> tuple:
        """The ``topk`` most similar images of each query.

        Args:
            queries: ``(Q, E)`` L2-normalised query embeddings.
            topk: Results per query (capped at the index size).
            backend: ``'exact'`` (cosine against every embedding, in chunks),
                ``'faiss'`` (the ``ann.faiss`` index) or ``'auto'`` (faiss when
                the index has one, exact otherwise).
            nprobe: Lists a compressed (IVF) index scans; default: the recorded one.
            rerank: Candidates of a compressed index re-scored exactly from the
                memory-mapped shards (0: none); default: the recorded number.

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
            ann = self.ann()
            if is_ivf(ann):
                info = self.meta.get('ann', {})  # ann() found ann.faiss: its recorded parameters
                nprobe = nprobe or info.get('nprobe') or ivfpq_params(len(self), q.shape[1])['nprobe']
                rerank = info.get('rerank', 0) if rerank is None else rerank
                return ivfpq_search(ann, q, k, nprobe, rerank, self.vectors())
            return ann_search(ann, q, k)
        return exact_search(self.embeddings(), q, k)


def _expect_random_reads(array: np.ndarray) -> None:
    """Tell the kernel a memory-mapped shard is read a row here and there: no read-ahead.

    Re-scoring reads a few hundred scattered 1-2 KB rows per query; read-ahead
    would read (and map into the process) a hundred KB or more around each.
    """
    mapped = getattr(array, '_mmap', None)  # numpy's memmap keeps its mmap here
    if mapped is not None and hasattr(mmap, 'MADV_RANDOM'):
        mapped.madvise(mmap.MADV_RANDOM)


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
