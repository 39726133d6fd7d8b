"""Latency of one query of the search page over a 100,000-image index on the CPU.

python benchmarks/search_latency.py [--images 100000] [--queries 200] [--backends exact hnsw]
                                    [--index-dir DIR] [--threads N]

Writes (once, kept under ``--index-dir``) a synthetic index of ``--images`` random
unit embeddings of the demo model's width, with an HNSW ``ann.faiss`` (what
``rsretrieval-retrieve index`` builds from 100,000 images on). Builds
``configs/cmpagl_demo.py``'s model on the CPU with random weights (its real text
side: the offline MiniLM tokenizer and layers; the time does not depend on the
weights), then times, per backend:

- ``http``: ``GET /api/search?q=...&k=10`` of the served app (uvicorn in a thread,
  a keep-alive loopback connection): what the page waits for;
- ``Searcher.search`` alone (text encoding + search), and its two parts,
  ``encode`` and the ``index search``; called from a worker thread, as the server
  calls it (on a loaded machine, torch's OpenMP threads spin-wait in the thread
  that built the model: 140 ms for an encoding that takes 3 ms in another thread,
  or with ``OMP_WAIT_POLICY=passive``).

Prints the median and the 95th percentile (ms) as a markdown table, with the
machine's CPU count and load.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import http.client
import json
import os
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'configs' / 'cmpagl_demo.py'
QUERIES = [
    'a bridge over a river',
    'three red planes at the top left of farmland',
    'many boats in a harbour',
    'a white storage tank next to a road',
    'a baseball field surrounded by trees',
    'dense residential buildings along a straight road',
    'two tennis courts beside a parking lot',
    'a curved river through green farmland',
    'an airport with planes parked near the terminal',
    'a large roundabout with cars',
    'sparse trees on a bare land',
    'a stadium next to a square',
]


def add_random_unit_embeddings(index, images: int, width: int, seed: int = 0) -> None:
    """Add ``images`` random unit embeddings to ``index``, in shards of 25,000 named ``scene_NNNNNN.png``."""
    rng = np.random.default_rng(seed)
    for first in range(0, images, 25_000):
        n = min(25_000, images - first)
        emb = rng.standard_normal((n, width), dtype=np.float32)
        index.add([f'scene_{i:06d}.png' for i in range(first, first + n)], emb / np.linalg.norm(emb, axis=1)[:, None])


def synthetic_index(folder: Path, images: int, width: int, seed: int = 0):
    """An index of ``images`` random unit embeddings (shards of 25,000) with an HNSW ann.faiss (kept)."""
    from rsretrieval.search import ArchiveIndex

    if (folder / 'ann.faiss').is_file():
        index = ArchiveIndex(folder)
        if len(index) == images and index.meta['embed_dim'] == width:
            return index
        for f in folder.iterdir():
            f.unlink()
    start = time.perf_counter()
    index = ArchiveIndex.create(folder, folder / 'images', width, dict(checkpoint_sha256='synthetic'))
    add_random_unit_embeddings(index, images, width, seed)
    index.build_ann('hnsw')
    print(f'wrote a {images:,} x {width} index with HNSW under {folder} in {time.perf_counter() - start:.0f} s')
    return index


def timed(fn: Callable[[str], object], queries: list[str], warmup: int = 10) -> np.ndarray:
    """Milliseconds of ``fn(query)`` for each of ``queries``, after ``warmup`` untimed calls."""
    for q in queries[:warmup]:
        fn(q)
    out = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        out.append(1000 * (time.perf_counter() - start))
    return np.array(out)


def timed_in_worker(fn: Callable[[str], object], queries: list[str]) -> np.ndarray:
    """:func:`timed` in a worker thread, where the server's thread pool calls the searcher."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(timed, fn, queries).result()


def http_search(base: str, k: int) -> tuple[Callable[[str], object], Callable[[], None]]:
    """A function that GETs ``/api/search`` over one keep-alive connection, and one that closes it."""
    host, port = base.removeprefix('http://').rsplit(':', 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def get(query: str) -> dict:
        conn.request('GET', '/api/search?' + urllib.parse.urlencode(dict(q=query, k=k)))
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f'/api/search answered {response.status}: {body[:200]!r}')
        return json.loads(body)

    return get, conn.close


def row(backend: str, what: str, ms: np.ndarray) -> str:
    return f'| {backend} | {what} | {np.median(ms):.1f} | {np.percentile(ms, 95):.1f} | {ms.max():.1f} |'


def measure(backend: str, searcher, queries: list[str], k: int) -> None:
    """Print the rows of one backend: encoding, index search, both, and through HTTP."""
    from rsretrieval.search import server

    q = searcher.embed(queries[0])
    index_search = functools.partial(searcher.index.search, backend=searcher.backend)
    print(row(backend, 'encode', timed_in_worker(searcher.embed, queries)))
    print(row(backend, 'index search', timed_in_worker(lambda _: index_search(q, k), queries)))
    print(row(backend, 'Searcher.search', timed_in_worker(lambda text: searcher.search(text, k), queries)))
    with server.running(server.create_app(searcher, server.allowed_hosts_for('127.0.0.1'))) as url:
        get, close = http_search(url, k)
        print(row(backend, 'GET /api/search', timed(get, queries)))
        close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=100_000)
    parser.add_argument('--queries', type=int, default=200, help='timed queries per measurement')
    parser.add_argument('--k', type=int, default=10)
    parser.add_argument('--backends', nargs='+', choices=['exact', 'hnsw'], default=['exact', 'hnsw'])
    parser.add_argument('--index-dir', help='where the synthetic index is kept (default: a temporary folder)')
    parser.add_argument('--threads', type=int, help='torch threads (default: torch picks, one per core)')
    args = parser.parse_args()

    import torch

    from rsretrieval.apis import embed_texts, init_model
    from rsretrieval.search import server

    if args.threads:
        torch.set_num_threads(args.threads)
    model = init_model(CONFIG, device='cpu', quiet=True)
    width = int(embed_texts(model, ['width probe']).shape[1])
    queries = [f'{QUERIES[i % len(QUERIES)]} {i}' for i in range(args.queries)]  # no two alike
    with tempfile.TemporaryDirectory() as tmp:
        index = synthetic_index(Path(args.index_dir or tmp) / 'index', args.images, width)
        load = ', '.join(f'{x:.1f}' for x in os.getloadavg())
        print(f'{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, load average {load}')
        print(f'{args.images:,} images x {width}-d, k = {args.k}, {args.queries} queries, demo text encoder')
        print('\n| backend | measured | median (ms) | p95 (ms) | max (ms) |\n|---|---|---|---|---|')
        for backend in args.backends:
            encode = functools.partial(embed_texts, model)
            searcher = server.Searcher(index, encode, 'faiss' if backend == 'hnsw' else 'exact')
            measure(backend, searcher, queries, args.k)


if __name__ == '__main__':
    main()
