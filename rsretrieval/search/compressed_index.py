"""A compressed faiss index (IVF with product quantisation) for archives whose embeddings outgrow RAM.

Each image is kept as a short product-quantised code (``pq_bytes`` bytes: two
4-bit sub-quantisers a byte, faiss's "fast-scan" layout, which scores 32 codes
at once with SIMD lookups; plus the 8-byte id faiss stores beside it) in the
inverted list of its nearest coarse centroid. A query scans the ``nprobe``
nearest lists with the codes' approximate scores, then re-scores its
``rerank`` best candidates exactly with their float32 embeddings, read from
the memory-mapped shards (only those rows are paged in). Building trains on a
sample and adds shard by shard: neither building nor searching holds all
float32 embeddings in memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: Most bytes per image the compressed index may take in memory (code + id).
MAX_BYTES_PER_IMAGE = 100
#: Bytes faiss keeps per image beside its code: the 64-bit id of the inverted list.
ID_BYTES = 8
#: Rows added to the index at a time (bounds the float32 copy made while adding).
ADD_CHUNK = 65536
#: Threads that read the rows of one re-scoring at once, from how many rows, and from how slow a row
#: of the first :data:`PROBE_ROWS` (read first, timed): reads from the disk overlap (a disk serves
#: many at once), reads from the page cache (1-7 us a row, measured) would only pay the threads'
#: overhead. A row from the virtual disk of the 2-core VM it was measured on took 80-100 us.
READ_THREADS = 16
PARALLEL_READ_MIN = 64
PROBE_ROWS = 8
DISK_READ_SECONDS = 20e-6


def _split(rows: np.ndarray) -> list[np.ndarray]:
    """``rows`` in up to :data:`READ_THREADS` consecutive pieces of at least 16 rows."""
    pieces = max(1, min(READ_THREADS, len(rows) // 16))
    return np.array_split(rows, pieces)


def ivfpq_params(num_images: int, dim: int) -> dict:
    """The IVF-PQ parameters for ``num_images`` embeddings of width ``dim``.

    - ``nlist``: coarse lists, the power of two nearest ``sqrt(N)`` (fewer than
      faiss's usual ``4 sqrt(N)``: comparing every vector with every centroid
      dominates training and adding on a few cores, while fast-scan makes the
      longer lists cheap to scan), at least 16, at most ``N / 39`` (faiss wants
      39 training points per centroid);
    - ``pq_m``: 4-bit sub-quantisers, the largest divisor of ``dim`` with at
      least 2 dimensions each whose code (``pq_bytes``, half of ``pq_m``
      rounded up) + id stay within :data:`MAX_BYTES_PER_IMAGE` (128 for 256-d
      and 512-d embeddings: 64 bytes, 72 per image with the id);
    - ``nprobe``: lists scanned per query, ``nlist / 16`` clipped to 32..512;
    - ``rerank``: candidates re-scored exactly from the shards, one per 10,000
      images, clipped to 200..2000: the denser the archive, the less 4-bit codes
      tell close neighbours apart. Measured with ``benchmarks/index_scale.py`` on
      clustered vectors: at 10 M images, recall@10 depends on ``rerank``
      (200: 0.71, 400: 0.85) and not on ``nprobe`` from 256 lists on;
    - ``train_size``: vectors sampled to train, 64 per list (at least 65,536, at most N);
    - ``quantizer``: ``'flat'``, or ``'hnsw'`` from 8,192 lists (about 48 M
      images), where comparing each vector with every centroid makes adding slow.
    """
    if num_images < 1 or dim < 1:
        raise ValueError(f'need at least one image and a positive width, got {num_images} x {dim}')
    nlist = 2 ** round(math.log2(max(math.sqrt(num_images), 1)))
    nlist = int(max(1, min(max(nlist, 16), num_images // 39)))
    budget = MAX_BYTES_PER_IMAGE - ID_BYTES
    pq_m = max(m for m in range(1, max(min(dim // 2, 2 * budget), 1) + 1) if dim % m == 0)
    return dict(
        nlist=nlist,
        pq_m=pq_m,
        pq_bytes=(pq_m + 1) // 2,
        nprobe=int(min(max(nlist // 16, 32), 512, nlist)),
        rerank=int(min(max(num_images // 10_000, 200), 2000)),
        train_size=int(min(num_images, max(64 * nlist, 65536))),
        quantizer='hnsw' if nlist >= 8192 else 'flat',
    )


def factory_string(params: dict) -> str:
    """The :func:`faiss.index_factory` description of ``params``."""
    coarse = f'IVF{params["nlist"]}' + ('_HNSW32' if params['quantizer'] == 'hnsw' else '')
    return f'{coarse},PQ{params["pq_m"]}x4fs'


def bytes_per_image(params: dict) -> int:
    """Memory per image of the loaded index: the code and its id (the centroids are shared)."""
    return params['pq_bytes'] + ID_BYTES


class ShardVectors:
    """Rows of several ``(n_i, E)`` arrays (memory-mapped shards) addressed by one global id.

    Args:
        arrays: The shards, in id order.
    """

    def __init__(self, arrays: Sequence[np.ndarray]) -> None:
        self.arrays = list(arrays)
        self.starts = np.cumsum([0] + [len(a) for a in self.arrays])
        self._readers: ThreadPoolExecutor | None = None
        self._readers_made = threading.Lock()  # server threads may search at once

    def __len__(self) -> int:
        return int(self.starts[-1])

    def take(self, ids: np.ndarray) -> np.ndarray:
        """The rows ``ids`` (each ``0 <= id < len(self)``) as a float32 ``(len(ids), E)`` array.

        Of many rows, the first :data:`PROBE_ROWS` are read and timed; when they
        came from the disk rather than the page cache, the others are read by
        :data:`READ_THREADS` threads at once, so that the disk serves them in
        parallel instead of one page fault after another (numpy copies without
        the GIL).
        """
        ids = np.asarray(ids, dtype=np.int64)
        dim = self.arrays[0].shape[1] if self.arrays else 0
        out = np.empty((len(ids), dim), np.float32)
        shard = np.searchsorted(self.starts, ids, side='right') - 1
        order = np.argsort(shard, kind='stable')  # positions in ids, shard by shard

        def read(rows: np.ndarray) -> None:  # a slice of order: the rows of one shard after another
            for part in np.split(rows, np.flatnonzero(np.diff(shard[rows])) + 1):
                s = shard[part[0]]
                out[part] = self.arrays[s][ids[part] - self.starts[s]]

        if not len(ids):
            return out
        if len(ids) < PARALLEL_READ_MIN:
            read(order)
            return out
        start = time.perf_counter()
        read(order[:PROBE_ROWS])
        per_row = (time.perf_counter() - start) / PROBE_ROWS
        if per_row < DISK_READ_SECONDS:  # from the page cache: threads would only add their overhead
            read(order[PROBE_ROWS:])
        else:
            list(self._reader_pool().map(read, _split(order[PROBE_ROWS:])))
        return out

    def _reader_pool(self) -> ThreadPoolExecutor:
        with self._readers_made:
            if self._readers is None:
                self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix='shard-reader')
            return self._readers

    def sample(self, size: int, seed: int = 0) -> np.ndarray:
        """``size`` distinct rows drawn at random (all when ``size >= len(self)``), read in file order."""
        n = len(self)
        if size >= n:
            ids = np.arange(n)
        else:
            ids = np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
        return self.take(ids)


def build_ivfpq(vectors: ShardVectors, params: dict, seed: int = 0):
    """A trained IVF-PQ faiss index (inner product) holding every row of ``vectors``.

    Trains on ``params['train_size']`` sampled rows, then adds :data:`ADD_CHUNK`
    rows at a time: memory stays at the sample, one chunk and the codes.
    """
    index = train_ivfpq(vectors, params, seed)
    add_shards(index, vectors)
    return index


def train_ivfpq(vectors: ShardVectors, params: dict, seed: int = 0):
    """An empty IVF-PQ faiss index of ``params``, trained on ``params['train_size']`` rows drawn with ``seed``."""
    import faiss

    dim = vectors.arrays[0].shape[1]
    index = faiss.index_factory(dim, factory_string(params), faiss.METRIC_INNER_PRODUCT)
    faiss.extract_index_ivf(index).cp.seed = seed
    index.train(np.ascontiguousarray(vectors.sample(params['train_size'], seed)))
    return index


def add_shards(index, vectors: ShardVectors) -> None:
    """Add every row of ``vectors`` to ``index``, :data:`ADD_CHUNK` rows at a time."""
    for array in vectors.arrays:
        for start in range(0, len(array), ADD_CHUNK):
            index.add(np.ascontiguousarray(array[start : start + ADD_CHUNK], dtype=np.float32))


def is_ivf(ann) -> bool:
    """Whether the faiss index ``ann`` has inverted lists (searched with ``nprobe``)."""
    import faiss

    return faiss.try_extract_index_ivf(ann) is not None


def search_parameters(ann, nprobe: int):
    """Per-call search parameters of an IVF index: ``nprobe`` lists (an HNSW quantiser explores at
    least ``2 nprobe`` centroids). The shared index itself is never changed."""
    import faiss

    quantizer_params = None
    if hasattr(faiss.downcast_index(faiss.extract_index_ivf(ann).quantizer), 'hnsw'):
        quantizer_params = faiss.SearchParametersHNSW(efSearch=max(2 * nprobe, 64))
    params = faiss.SearchParametersIVF(nprobe=int(nprobe), quantizer_params=quantizer_params)
    if isinstance(ann, faiss.IndexPreTransform):
        params = faiss.SearchParametersPreTransform(index_params=params)
    return params


def ivfpq_search(
    ann, queries: np.ndarray, k: int, nprobe: int, rerank: int = 0, vectors: ShardVectors | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best ``(scores, ids)`` of each query from the IVF index ``ann``, best first.

    Args:
        ann: An IVF faiss index (inner product).
        queries: ``(Q, E)`` float32 L2-normalised queries.
        k: Results per query.
        nprobe: Inverted lists scanned per query.
        rerank: When above 0 and ``vectors`` is given, the best ``max(k, rerank)``
            candidates of the codes are re-scored with their exact embeddings.
        vectors: The float32 embeddings (memory-mapped shards) for re-scoring.

    Returns:
        ``(scores, ids)``, both ``(Q, k)``; scores are cosines (exact when re-scored,
        approximate otherwise); missing results are padded with id -1 and score -inf.
    """
    depth = max(k, rerank) if rerank > 0 and vectors is not None else k
    scores, ids = ann.search(queries, depth, params=search_parameters(ann, nprobe))
    if depth == k:
        return scores, ids
    out_scores = np.full((len(queries), k), -np.inf, np.float32)
    out_ids = np.full((len(queries), k), -1, np.int64)
    for q, (query, found) in enumerate(zip(queries, ids)):
        found = np.sort(found[found >= 0])  # sorted: rows read in file order
        exact = vectors.take(found) @ query
        best = np.argsort(-exact, kind='stable')[:k]
        out_scores[q, : len(best)], out_ids[q, : len(best)] = exact[best], found[best]
    return out_scores, out_ids
