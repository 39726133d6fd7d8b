"""The search server under concurrent load: latency, throughput, 503s and its memory.

python benchmarks/server_load.py [--encoder minilm-l6|demo|tiny] [--images 100000]
                                 [--clients 8 64] [--duration 20] [--max-queue 16]
                                 [--honor-retry-after] [--index-dir DIR] [--threads N] [--lock FILE]

Starts the server in a subprocess (the app of ``rsretrieval-retrieve serve``, with
its uvicorn settings, on a free loopback port) over a synthetic index of
``--images`` random unit embeddings of the encoder's width (written once, kept
under ``--index-dir``; exact search). The text encoder is a real one with random
image weights, built offline:

- ``minilm-l6``: ``configs/cmpagl_ucm_minilm-l6.py``, the packaged MiniLM-L6 text
  stack (6 layers of width 384) standing in for the paper's 6 BERT-base layers;
- ``demo``: ``configs/cmpagl_demo.py`` (MiniLM-L3);
- ``tiny``: the demo shrunk as the tests shrink it (one text layer).

Then, for each ``--clients`` count C, C asyncio clients on keep-alive
connections send ``GET /api/search?q=...&k=10`` back to back for ``--duration``
seconds; on a 503 a client asks again at once (the worst case: clients that
ignore ``Retry-After``), or with ``--honor-retry-after`` sleeps that long first
(as a polite client does). Prints a markdown table: answers per status, throughput of
answered queries, latency percentiles of the 200s (and the median of the 503s),
the ``Retry-After`` values sent, and the server's resident memory (``VmRSS``)
and threads before and after each run, with its peak (``VmHWM``). ``--lock FILE``
holds ``flock FILE`` over the timed runs only (not while the model loads).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')

import numpy as np  # noqa: E402
from search_latency import add_random_unit_embeddings  # noqa: E402  (benchmarks/ is the script folder)

REPO = Path(__file__).resolve().parents[1]
ENCODERS = {
    'minilm-l6': ('cmpagl_ucm_minilm-l6.py', {}),
    'demo': ('cmpagl_demo.py', {}),
    'tiny': (
        'cmpagl_demo.py',
        {
            'model.backbone.img_size': 32,
            'model.backbone.patch_size': 4,
            'model.backbone.embed_dim': 8,
            'model.backbone.depths': (1, 1),
            'model.backbone.num_heads': (1, 2),
            'model.text_encoder.num_layers': 1,
            'model.fusion_head.layer_start': 1,
            'model.embed_dim': 16,
        },
    ),
}
WORDS = (
    'a bridge over a river with many boats in a harbour three red planes at the top left of farmland '
    'dense residential buildings along a straight road two tennis courts beside a parking lot'
).split()


# ------------------------------------------------------------------ the server (subprocess)
def synthetic_index(folder: Path, images: int, width: int, seed: int = 0):
    """An index of ``images`` random unit embeddings in shards of 25,000, kept for the next run."""
    from rsretrieval.search import ArchiveIndex

    if (folder / 'meta.json').is_file():
        index = ArchiveIndex(folder)
        if len(index.paths()) == images and index.meta['embed_dim'] == width:
            return index
        for file in folder.iterdir():
            file.unlink()
    index = ArchiveIndex.create(folder, folder / 'images', width, dict(checkpoint_sha256='synthetic'))
    add_random_unit_embeddings(index, images, width, seed)
    return index


def serve(args: argparse.Namespace) -> None:
    """Build the encoder and the index, serve them, print the URL as JSON; stop when stdin closes."""
    import functools

    import torch

    from rsretrieval.apis import embed_texts, init_model
    from rsretrieval.search import server

    if args.threads:
        torch.set_num_threads(args.threads)
    config, options = ENCODERS[args.encoder]
    model = init_model(REPO / 'configs' / config, device='cpu', cfg_options=options, quiet=True)
    encode = functools.partial(embed_texts, model)
    width = int(encode(['width probe']).shape[1])
    index = synthetic_index(Path(args.index_dir) / f'index_{args.images}_{width}', args.images, width)
    searcher = server.Searcher(index, encode, 'exact')
    app = server.create_app(searcher, server.allowed_hosts_for('127.0.0.1'), args.max_queue)
    with server.running(app) as url:
        info = dict(url=url, pid=os.getpid(), width=width, torch_threads=torch.get_num_threads())
        print(json.dumps(info), flush=True)
        sys.stdin.read()


# ------------------------------------------------------------------ the clients
def memory(pid: int) -> dict[str, int]:
    """``VmRSS``, ``VmHWM`` (MiB) and ``Threads`` of process ``pid``."""
    fields = {}
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        name, _, value = line.partition(':')
        if name in ('VmRSS', 'VmHWM'):
            fields[name] = int(value.split()[0]) // 1024
        elif name == 'Threads':
            fields[name] = int(value)
    return fields


async def client(host: str, port: int, deadline: float, seed: int, results: list, polite: bool) -> None:
    """GET ``/api/search`` back to back on one keep-alive connection until ``deadline``
    (sleeping ``Retry-After`` on a 503 when ``polite``); appends ``(status, seconds,
    Retry-After or None)`` for each answer."""
    rng = np.random.default_rng(seed)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline:
            query = ' '.join(rng.choice(WORDS, 6))
            target = '/api/search?' + urllib.parse.urlencode(dict(q=query, k=10))
            start = time.perf_counter()
            writer.write(f'GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n'.encode())
            head = await reader.readuntil(b'\r\n\r\n')
            lines = head.decode('latin-1').split('\r\n')
            status = int(lines[0].split()[1])
            headers = dict(line.lower().split(': ', 1) for line in lines[1:] if line)
            await reader.readexactly(int(headers['content-length']))
            retry = int(headers['retry-after']) if 'retry-after' in headers else None
            results.append((status, time.perf_counter() - start, retry))
            if polite and retry is not None:
                await asyncio.sleep(min(retry, deadline - time.monotonic()))
            if headers.get('connection') == 'close':
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def load(url: str, clients: int, duration: float, polite: bool = False) -> list:
    host, port = url.removeprefix('http://').rsplit(':', 1)
    deadline = time.monotonic() + duration
    results: list = []
    await asyncio.gather(*(client(host, int(port), deadline, n, results, polite) for n in range(clients)))
    return results


def row(clients: int, duration: float, results: list, before: dict, after: dict) -> str:
    statuses = collections.Counter(status for status, _, _ in results)
    ok = np.array([s for status, s, _ in results if status == 200]) * 1000
    busy = np.array([s for status, s, _ in results if status == 503]) * 1000
    retries = sorted({r for status, _, r in results if status == 503 and r is not None})
    pct = [f'{np.percentile(ok, p):.0f}' if len(ok) else '-' for p in (50, 95, 99)]
    return (
        f'| {clients} | {len(results)} | {statuses.get(200, 0)} | {statuses.get(503, 0)} '
        f'| {sum(n for s, n in statuses.items() if s not in (200, 503))} | {len(ok) / duration:.1f} '
        f'| {" | ".join(pct)} | {f"{np.median(busy):.1f}" if len(busy) else "-"} '
        f'| {"-" if not retries else f"{retries[0]}-{retries[-1]}"} '
        f'| {before["VmRSS"]} → {after["VmRSS"]} | {after["VmHWM"]} | {before["Threads"]} → {after["Threads"]} |'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--encoder', choices=sorted(ENCODERS), default='minilm-l6')
    parser.add_argument('--images', type=int, default=100_000)
    parser.add_argument('--clients', type=int, nargs='+', default=[8, 64])
    parser.add_argument('--duration', type=float, default=20.0, help='seconds of each run')
    parser.add_argument('--max-queue', type=int, default=16)
    parser.add_argument('--honor-retry-after', action='store_true', help="clients sleep a 503's Retry-After")
    parser.add_argument('--index-dir', help='where the synthetic index is kept (default: a temporary folder)')
    parser.add_argument('--threads', type=int, help="the server's torch threads (default: one per core)")
    parser.add_argument('--lock', help='a file to flock over the timed runs (e.g. /tmp/bench.lock)')
    parser.add_argument('--serve', action='store_true', help=argparse.SUPPRESS)  # the server subprocess
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        args.index_dir = args.index_dir or tmp
        command = [sys.executable, __file__, '--serve', *sys.argv[1:], '--index-dir', args.index_dir]
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            if args.lock:
                locked = stack.enter_context(open(args.lock, 'a'))
            info = json.loads(proc.stdout.readline())
            print(f'server up in {time.perf_counter() - start:.0f} s', file=sys.stderr)
            if args.lock:
                fcntl.flock(locked, fcntl.LOCK_EX)  # released when the file closes
            asyncio.run(load(info['url'], 1, 3.0))  # warm up: the first queries are slower
            print(
                f'{os.cpu_count()} CPUs, load average {", ".join(f"{x:.1f}" for x in os.getloadavg())}; '
                f'{args.images:,} images x {info["width"]}-d (exact search), {args.encoder} text encoder, '
                f'{info["torch_threads"]} torch threads, max_queue {args.max_queue}, k = 10, '
                f'{args.duration:g} s a run, clients {"sleep" if args.honor_retry_after else "ignore"} Retry-After\n'
            )
            print(
                '| clients | answers | 200 | 503 | other | queries/s | p50 ms | p95 ms | p99 ms | 503 p50 ms '
                '| Retry-After s | VmRSS MiB | VmHWM MiB | threads |'
            )
            print('|---' * 14 + '|')
            for clients in args.clients:
                before = memory(info['pid'])
                results = asyncio.run(load(info['url'], clients, args.duration, args.honor_retry_after))
                print(row(clients, args.duration, results, before, memory(info['pid'])), flush=True)
        finally:
            proc.stdin.close()
            proc.wait(60)


if __name__ == '__main__':
    main()
