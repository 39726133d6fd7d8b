"""Build time, memory, latency and recall of the compressed (IVF-PQ) archive index at 1 M and 10 M images.

python benchmarks/index_scale.py [--sizes 1000000 10000000] [--quick] [--dim 256] [--queries 1000]
                                 [--work-dir DIR] [--threads 2] [--keep]

Synthetic embeddings, written as index shards (float32 ``.npy``, ``--shard-size``
rows each, one shard at a time: never all in memory) under ``--work-dir`` and
deleted at the end (unless ``--keep``). The generator (``--centres`` clusters):

- a spectrum ``s_j = j^-decay`` over the ``dim`` dimensions (``--decay`` 0.5),
  normalised: embedding models spread their variance unevenly;
- ``--centres`` cluster centres (4096), Gaussian with that spectrum, normalised;
- an image: a centre drawn uniformly, plus Gaussian noise with the same
  spectrum scaled by ``--noise`` (0.8), normalised; the queries are drawn from the
  same law (other random draws).

Isotropic random unit vectors (``--centres 0``) have no structure: every vector
is almost equally far from every other, which no embedding model produces.

Per size, each phase in a fresh process: exact top-10 ground truth from the
memory-mapped shards (in chunks); building ``ann.faiss`` with
``ArchiveIndex.build_ann('ivfpq')`` (train + add, peak memory); then a process
that opens the index and prepares it as the server does (resident memory:
anonymous, i.e. the index itself, and file-backed, i.e. shard pages mapped for
re-scoring) and answers ``--queries`` queries one at a time through
``ArchiveIndex.search``, without exact re-scoring and with the recorded depth and twice it, at the recorded
``nprobe`` and at half and twice it: p50/p95 latency and recall@10 against
exact search. Prints a markdown table. ``--cold-queries N`` adds a phase that
evicts the shards from the page cache (and from the process) before each of N
queries at the recorded ``nprobe`` (per ``--reranks`` depth, else the recorded
one), once per ``--read-threads`` value (the threads
that read the re-scored rows): the latency of an index whose shards are on disk.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# ---------------------------------------------------------------------- data
def spectrum(dim: int, decay: float) -> np.ndarray:
    s = np.arange(1, dim + 1, dtype=np.float32) ** -decay
    return s / np.linalg.norm(s)


def centres(args: argparse.Namespace) -> np.ndarray:
    rng = np.random.default_rng([args.seed, 0])
    c = rng.standard_normal((args.centres, args.dim), dtype=np.float32) * spectrum(args.dim, args.decay)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def draw(n: int, part: int, args: argparse.Namespace, means: np.ndarray) -> np.ndarray:
    """``n`` unit vectors of the law; ``part`` picks an independent random stream."""
    rng = np.random.default_rng([args.seed, 1, part])
    noise = rng.standard_normal((n, args.dim), dtype=np.float32)
    if len(means):
        x = means[rng.integers(0, len(means), n)] + args.noise * noise * spectrum(args.dim, args.decay)
    else:
        x = noise
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def write_index(folder: Path, size: int, args: argparse.Namespace) -> float:
    from rsretrieval.search import ArchiveIndex

    start = time.perf_counter()
    index = ArchiveIndex.create(folder, folder, args.dim, dict(checkpoint_sha256='synthetic'))
    means = centres(args)
    for part, begin in enumerate(range(0, size, args.shard_size)):
        n = min(args.shard_size, size - begin)
        index.add([f'{begin + i:09d}.jpg' for i in range(n)], draw(n, part + 1, args, means))
    return time.perf_counter() - start


def queries(args: argparse.Namespace) -> np.ndarray:
    return draw(args.queries, 0, args, centres(args))


# ------------------------------------------------------------------- phases
def memory() -> dict:
    """This process's memory from /proc/self/status, in bytes."""
    fields = {}
    for line in Path('/proc/self/status').read_text().splitlines():
        key, _, value = line.partition(':')
        if key in ('VmRSS', 'VmHWM', 'RssAnon', 'RssFile'):
            fields[key] = int(value.split()[0]) * 1024
    return fields


class PeakAnon:
    """The largest anonymous (not file-backed) resident memory seen while in the ``with`` block, in bytes.

    VmHWM also counts the pages of the memory-mapped shards read while building,
    which the kernel may drop at any time; RssAnon is what the build itself holds.
    """

    def __enter__(self) -> PeakAnon:
        self.peak, self._stop = memory()['RssAnon'], threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, memory()['RssAnon'])

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def ground_truth(folder: Path, args: argparse.Namespace) -> dict:
    """Exact top-10 of every query, from the memory-mapped shards, 65,536 rows at a time."""
    from rsretrieval.search import ArchiveIndex

    q = queries(args)
    start = time.perf_counter()
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    offset = 0
    for array in ArchiveIndex(folder).vectors().arrays:
        for begin in range(0, len(array), 65536):
            chunk = np.asarray(array[begin : begin + 65536])
            sims = q @ chunk.T
            ids = np.arange(offset + begin, offset + begin + len(chunk))
            scores = np.concatenate([best_s, sims], axis=1)
            all_ids = np.concatenate([best_i, np.broadcast_to(ids, sims.shape)], axis=1)
            top = np.argpartition(-scores, min(10, scores.shape[1] - 1), axis=1)[:, :10]
            best_s, best_i = np.take_along_axis(scores, top, 1), np.take_along_axis(all_ids, top, 1)
        offset += len(array)
    np.save(folder.parent / f'{folder.name}_truth.npy', best_i)
    return dict(seconds=time.perf_counter() - start)


def build(folder: Path, args: argparse.Namespace) -> dict:
    import faiss

    from rsretrieval.search import ArchiveIndex
    from rsretrieval.search import compressed_index as ci

    faiss.omp_set_num_threads(args.threads)
    index = ArchiveIndex(folder)
    params = ci.ivfpq_params(len(index), args.dim)
    vectors = index.vectors()
    times = {}
    base_anon = memory()['RssAnon']  # the interpreter, torch and faiss: not the build's

    def timed(vectors, params, seed=0):  # the library's build, train and add timed apart
        start = time.perf_counter()
        ann = ci.train_ivfpq(vectors, params, seed)
        times['train'] = time.perf_counter() - start
        start = time.perf_counter()
        ci.add_shards(ann, vectors)
        times['add'] = time.perf_counter() - start
        return ann

    module = sys.modules['rsretrieval.search.archive_index']
    original, module.build_ivfpq = module.build_ivfpq, timed
    try:
        with PeakAnon() as peak:
            start = time.perf_counter()
            index.build_ann('ivfpq')
            total = time.perf_counter() - start
    finally:
        module.build_ivfpq = original
    del vectors
    return dict(
        **times,
        total=total,
        params=params,
        file_bytes=(folder / 'ann.faiss').stat().st_size,
        peak_rss=memory()['VmHWM'],
        peak_anon=peak.peak,
        base_anon=base_anon,
    )


def search(folder: Path, args: argparse.Namespace) -> dict:
    import faiss

    from rsretrieval.search import ArchiveIndex

    faiss.omp_set_num_threads(args.threads)
    before = memory()
    index = ArchiveIndex(folder)
    n = index.prepare('faiss')
    opened = memory()
    q = queries(args)
    truth = np.load(folder.parent / f'{folder.name}_truth.npy')
    nprobe, depth = index.ann_info['nprobe'], index.ann_info['rerank']
    rows = []
    for probe in args.nprobes or (max(nprobe // 2, 1), nprobe, 2 * nprobe):
        for rerank in args.reranks or (0, depth, 2 * depth):
            index.search(q[:20], 10, 'faiss', nprobe=probe, rerank=rerank)  # warm caches of this setting
            times, found = [], []
            for i in range(len(q)):
                start = time.perf_counter()
                _, ids = index.search(q[i : i + 1], 10, 'faiss', nprobe=probe, rerank=rerank)
                times.append(time.perf_counter() - start)
                found.append(ids[0])
            recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
            rows.append(
                dict(
                    nprobe=probe,
                    rerank=rerank,
                    p50_ms=1e3 * float(np.percentile(times, 50)),
                    p95_ms=1e3 * float(np.percentile(times, 95)),
                    recall=float(recall),
                )
            )
    return dict(
        images=n,
        anon_bytes=opened['RssAnon'] - before['RssAnon'],
        file_bytes_mapped=opened['RssFile'] - before['RssFile'],
        rss_after=memory(),
        rows=rows,
    )


def evict_shards(index) -> None:
    """Drop the shards' pages from this process and from the page cache: the next reads go to the disk."""
    for array in index.vectors().arrays:
        array._mmap.madvise(mmap.MADV_DONTNEED)  # unmapped pages can leave the page cache
    for shard in sorted(Path(index.folder).glob('shard_*.npy')):
        fd = os.open(shard, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cold_search(folder: Path, args: argparse.Namespace) -> dict:
    """Latency with the shards out of the page cache before every query, then warm, at the recorded ``nprobe``.

    Per re-scored depth (``--reranks``, else the recorded one) and ``--read-threads``
    value (the threads that read the re-scored rows).
    """
    import faiss

    from rsretrieval.search import ArchiveIndex, compressed_index

    faiss.omp_set_num_threads(args.threads)
    index = ArchiveIndex(folder)
    index.prepare('faiss')
    q = queries(args)[: args.cold_queries]
    nprobe = index.ann_info['nprobe']
    rows = []
    for rerank in args.reranks or (index.ann_info['rerank'],):
        for threads in args.read_threads:
            compressed_index.READ_THREADS = threads
            index.vectors()._readers = None  # a pool of this size
            for cache in ('cold', 'warm'):
                index.search(q, 10, 'faiss', nprobe=nprobe, rerank=rerank)  # pool, faiss and (warm) pages ready
                times = []
                for i in range(len(q)):
                    if cache == 'cold':
                        evict_shards(index)
                    start = time.perf_counter()
                    index.search(q[i : i + 1], 10, 'faiss', nprobe=nprobe, rerank=rerank)
                    times.append(time.perf_counter() - start)
                rows.append(
                    dict(
                        rerank=rerank,
                        read_threads=threads,
                        cache=cache,
                        p50_ms=1e3 * float(np.percentile(times, 50)),
                        p95_ms=1e3 * float(np.percentile(times, 95)),
                    )
                )
    return dict(rows=rows, nprobe=nprobe)


PHASES = dict(truth=ground_truth, build=build, search=search, cold=cold_search)


def run_phase(phase: str, folder: Path, args: argparse.Namespace) -> dict:
    """``phase`` in a fresh process (its memory is its own), its result as a dict."""
    argv = [sys.executable, __file__, '--phase', phase, '--folder', str(folder)] + args.forward
    out = subprocess.run(argv, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[1_000_000, 10_000_000])
    parser.add_argument('--quick', action='store_true', help='one size of 100,000 (a smoke run)')
    parser.add_argument('--dim', type=int, default=256, help='embedding width (256: CMPAGL)')
    parser.add_argument('--queries', type=int, default=1000)
    parser.add_argument('--centres', type=int, default=4096, help='clusters of the generator (0: isotropic)')
    parser.add_argument('--noise', type=float, default=0.8)
    parser.add_argument('--decay', type=float, default=0.5)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--shard-size', type=int, default=65536)
    parser.add_argument('--threads', type=int, default=2, help='faiss OpenMP threads')
    parser.add_argument('--nprobes', type=int, nargs='+', help='lists scanned (default: the recorded, half, twice)')
    parser.add_argument('--reranks', type=int, nargs='+', help='re-scored depths (default: 0, the recorded, twice)')
    parser.add_argument(
        '--cold-queries', type=int, default=0, help='also time this many queries with the shards evicted before each'
    )
    parser.add_argument('--read-threads', type=int, nargs='+', default=[1, 16], help='re-scoring read threads (cold)')
    parser.add_argument('--work-dir', default='/tmp/index_scale')
    parser.add_argument('--keep', action='store_true', help='keep the shards and indexes')
    parser.add_argument('--phase', choices=list(PHASES), help=argparse.SUPPRESS)
    parser.add_argument('--folder', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.forward = [
        f'--{name}={getattr(args, name.replace("-", "_"))}'
        for name in ('dim', 'queries', 'centres', 'noise', 'decay', 'seed', 'shard-size', 'threads', 'cold-queries')
    ]
    args.forward += ['--read-threads', *map(str, args.read_threads)]
    for name in ('nprobes', 'reranks'):
        if getattr(args, name):
            args.forward += [f'--{name}', *map(str, getattr(args, name))]
    return args


def table(results: list[dict]) -> str:
    lines = [
        '| images | build: train + add (s) | build peak RAM: anon above start, all (GB) | ann.faiss (MB, B/image) '
        '| opened index RAM (MB, B/image) | nprobe | rerank | p50 (ms) | p95 (ms) | recall@10 |',
        '|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in results:
        b, s, n = r['build'], r['search'], r['images']
        anon = (b['peak_anon'] - b['base_anon']) / 1e9
        for row in s['rows']:
            lines.append(
                f'| {n:,} | {b["train"]:.0f} + {b["add"]:.0f} | {anon:.2f}, {b["peak_rss"] / 1e9:.2f} '
                f'| {b["file_bytes"] / 1e6:.0f} ({b["file_bytes"] / n:.0f}) '
                f'| {s["anon_bytes"] / 1e6:.0f} ({s["anon_bytes"] / n:.0f}) '
                f'| {row["nprobe"]} | {row["rerank"]} | {row["p50_ms"]:.2f} | {row["p95_ms"]:.2f} '
                f'| {row["recall"]:.3f} |'
            )
    return '\n'.join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.phase:
        print(json.dumps(PHASES[args.phase](Path(args.folder), args)))
        return
    sizes = [100_000] if args.quick else args.sizes
    work = Path(args.work_dir)
    results = []
    try:
        for size in sizes:
            folder = work / f'n{size}'
            shutil.rmtree(folder, ignore_errors=True)
            written = write_index(folder, size, args)
            print(f'{size:,}: shards written in {written:.0f} s', flush=True)
            truth = run_phase('truth', folder, args)
            print(f'{size:,}: exact ground truth in {truth["seconds"]:.0f} s', flush=True)
            built = run_phase('build', folder, args)
            print(f'{size:,}: built {json.dumps(built)}', flush=True)
            searched = run_phase('search', folder, args)
            print(f'{size:,}: searched {json.dumps(searched)}', flush=True)
            results.append(dict(images=size, build=built, search=searched))
            if args.cold_queries:
                results[-1]['cold'] = run_phase('cold', folder, args)
                print(f'{size:,}: searched cold {json.dumps(results[-1]["cold"])}', flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load = Path('/proc/loadavg').read_text().split()[:3]
    generator = 'isotropic' if args.centres == 0 else f'{args.centres} clusters, noise {args.noise}, decay {args.decay}'
    print(
        f'\n{args.dim}-d, {generator}; {args.queries} queries one at a time; {args.threads} faiss threads; load {load}'
    )
    print(table(results))
    cold = [r for r in results if 'cold' in r]
    if cold:
        print(f'\n{args.cold_queries} queries, cold: the shards evicted from the page cache before each one:\n')
        print('| images | nprobe | rerank | read threads | page cache | p50 (ms) | p95 (ms) |')
        print('|---|---|---|---|---|---|---|')
        for r in cold:
            c = r['cold']
            for row in c['rows']:
                print(
                    f'| {r["images"]:,} | {c["nprobe"]} | {row["rerank"]} | {row["read_threads"]} | {row["cache"]} '
                    f'| {row["p50_ms"]:.1f} | {row["p95_ms"]:.1f} |'
                )


if __name__ == '__main__':
    main()
