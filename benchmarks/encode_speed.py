"""Image encoding speed on CPUs: an earlier Gswin, today's eager path and the compiled one, fp32 and bf16.

python benchmarks/encode_speed.py [--baseline-rev REV] [--batch-size 32] [--iters 5] [--eager-only] [--avx2] [--blocks]
    [--processes N]

Paper-size Gswin (256 px, random weights, seeded) behind a CMPAGL-like head
(global token -> linear 768 -> 256 -> L2 norm), encoded through
:func:`rsretrieval.apis.fast_encoding.build_image_encoder` with ``fast=False``
(the eager model) and ``fast=True`` (compiled), plus timm Swin-T (eager).
``--processes N`` adds today's Gswin run as N processes at once (eager and
compiled), each with its share of the threads and its own batch, as
``tools/dist_index.sh N`` runs ``index``: images/s counts every process's batch.
``--baseline-rev`` adds the Gswin of an earlier commit (its ``gswin.py`` read
from git, the same weights) as the reference row, once as it ran then (glibc's
default malloc) and once with freed memory kept
(:func:`~rsretrieval.utils.cpu_memory.keep_freed_cpu_memory`, which today's
paths use, as the ``index`` command does).

Every path runs in its own worker process, because the malloc setting is
process-wide; the workers encode one batch each in turn, so that a drift of
the machine's speed hits them alike, and only one path works at a time. Reports
images/s (median over ``--iters`` batches after one warm-up batch), the
compile time (the first compiled call, with a fresh inductor cache unless
``--cache-dir``), and the smallest cosine against the reference embeddings of
the same precision. ``--avx2`` runs it again, eager paths only, with
``ATEN_CPU_CAPABILITY=avx2`` (ATen's AVX2 kernels only). ``--blocks`` adds the
block-level comparison, timed in turn: Gswin's third stage (3 blocks, with and
without its global-window generator, 384 channels, 16x16) against timm Swin-T's
(6 blocks, same width and map), eager and compiled, freed memory kept for both. Run it under
``flock /tmp/bench.lock``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch._inductor import config as inductor_config

from rsretrieval.apis.fast_encoding import build_image_encoder
from rsretrieval.registry import BACKBONES
from rsretrieval.utils import register_all_modules
from rsretrieval.utils.cpu_memory import keep_freed_cpu_memory
from rsretrieval.utils.precision import cpu_bf16_support


class Head(nn.Module):
    """A backbone behind CMPAGL's image projection: what ``encode_image`` runs."""

    def __init__(self, backbone: nn.Module, embed_dim: int = 256) -> None:
        super().__init__()
        self.backbone = backbone
        self.proj = nn.Linear(backbone.out_channels, embed_dim)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.backbone(images)[:, 0]), dim=-1)


def _timed_in_turn(fns: list, x: torch.Tensor, iters: int) -> list[float]:
    """Median seconds of each ``fn(x)``, the functions called in turn, after one warm-up call each."""
    for fn in fns:
        fn(x)
    spent = [[] for _ in fns]
    for _ in range(iters):
        for fn, times in zip(fns, spent):
            start = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - start)
    return [statistics.median(times) for times in spent]


def _build(kind: str) -> Head:
    torch.manual_seed(0)
    return Head(BACKBONES.build(dict(type=kind))).eval()


def gswin_at(rev: str) -> type[nn.Module]:
    """The ``Gswin`` class of ``rsretrieval/models/backbones/gswin.py`` at git revision ``rev``."""
    source = subprocess.run(
        ['git', 'show', f'{rev}:rsretrieval/models/backbones/gswin.py'],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Registered under its own name by the revision's decorator: keep it out of the registry.
    source = source.replace('@BACKBONES.register_module()', '').replace(
        'from .swin import', 'from rsretrieval.models.backbones.swin import'
    )
    spec = importlib.util.spec_from_loader(f'gswin_at_{rev}', loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    exec(compile(source, f'gswin.py@{rev}', 'exec'), module.__dict__)
    return module.Gswin


@dataclass(frozen=True)
class EncoderPath:
    """One way of encoding, run in its own worker process.

    Attributes:
        name: Its row label.
        model: ``'Gswin'`` or ``'Swin'``.
        precision: ``'fp32'`` or ``'bf16'``.
        rev: Git revision of ``gswin.py`` to use (None: today's).
        fast: The compiled path.
        keep_memory: :func:`~rsretrieval.utils.cpu_memory.keep_freed_cpu_memory`, as ``index`` does.
        processes: Processes encoding a batch each at the same time, the threads shared out among them,
            as ``tools/dist_index.sh`` runs ``index`` (torchrun gives each process one thread by default).
    """

    name: str
    model: str
    precision: str
    rev: str | None = None
    fast: bool = False
    keep_memory: bool = True
    processes: int = 1

    def argv(self) -> list[str]:
        threads = max(1, torch.get_num_threads() // self.processes)
        return [
            *('--worker', self.model, self.precision, self.rev or '-'),
            *(['--worker-fast'] if self.fast else []),
            *(['--worker-keep-memory'] if self.keep_memory else []),
            *(['--worker-threads', str(threads)] if self.processes > 1 else []),
        ]


def encoder_paths(args: argparse.Namespace, precision: str) -> list[EncoderPath]:
    """The rows of one precision: the baseline revision as it ran, then with memory kept, then today's."""
    paths = []
    if args.baseline_rev:
        rev = args.baseline_rev
        paths.append(EncoderPath(f'eager at {rev}', 'Gswin', precision, rev, keep_memory=False))
        paths.append(EncoderPath(f'eager at {rev}, freed memory kept', 'Gswin', precision, rev))
    paths.append(EncoderPath('today (eager)', 'Gswin', precision))
    if not args.eager_only:
        paths.append(EncoderPath('today (compiled)', 'Gswin', precision, fast=True))
    paths.append(EncoderPath('eager', 'Swin', precision))
    if args.processes > 1:
        n = args.processes
        paths.append(EncoderPath(f'today (eager), {n} processes', 'Gswin', precision, processes=n))
        if not args.eager_only:
            paths.append(EncoderPath(f'today (compiled), {n} processes', 'Gswin', precision, fast=True, processes=n))
    return paths


class Worker:
    """The processes of one path; each holds the encoder and encodes one batch, timed, whenever asked."""

    def __init__(self, path: EncoderPath, args: argparse.Namespace) -> None:
        self.path = path
        argv = [sys.executable, __file__, *path.argv(), '--batch-size', str(args.batch_size)]
        self.procs = [
            subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(path.processes)
        ]
        ready = [json.loads(line) for line in self._ask(None)]
        # processes compile at the same time: the path is ready when the slowest is
        self.ready = dict(compile_s=max(r['compile_s'] for r in ready), compiled=all(r['compiled'] for r in ready))

    def _ask(self, command: str | None, procs: list[subprocess.Popen] | None = None) -> list[str]:
        """Send ``command`` to every process (or to ``procs``) at once, then read each one's answer."""
        procs = self.procs if procs is None else procs
        if command is not None:
            for proc in procs:
                proc.stdin.write(command + '\n')
                proc.stdin.flush()
        lines = [proc.stdout.readline() for proc in procs]
        if not all(lines):
            raise RuntimeError(f'a worker of {self.path.name} ({self.path.precision}) ended: see its output above')
        return lines

    def time_batch(self) -> float:
        """Seconds until every process has encoded its batch (they start together)."""
        return max(float(line) for line in self._ask('run'))

    def embeddings(self, folder: str) -> torch.Tensor:
        """The first process's embeddings of the batch (all processes hold the same weights and batch)."""
        file = os.path.join(folder, f'{os.getpid()}-{self.procs[0].pid}.pt')
        self._ask(f'save {file}', self.procs[:1])
        return torch.load(file, weights_only=True)

    def close(self) -> None:
        for proc in self.procs:
            proc.stdin.close()
            proc.wait()


def serve_worker(args: argparse.Namespace) -> None:
    """The worker side: build the encoder, warm it up, then answer ``run`` and ``save FILE`` lines."""
    model, precision, rev = args.worker
    if args.worker_keep_memory:
        keep_freed_cpu_memory()
    if args.worker_threads:
        torch.set_num_threads(args.worker_threads)
    register_all_modules()
    head = _build(model)
    if rev != '-':
        baseline = Head(gswin_at(rev)()).eval()
        baseline.load_state_dict(head.state_dict())
        head = baseline
    encoder = build_image_encoder(head, precision, fast=args.worker_fast)
    x = _batch(args.batch_size)
    start = time.perf_counter()
    encoder(x)  # warm-up; the compiled path compiles here
    print(json.dumps(dict(compile_s=time.perf_counter() - start, compiled=encoder.compiled)), flush=True)
    for line in sys.stdin:
        command, _, file = line.strip().partition(' ')
        if command == 'run':
            start = time.perf_counter()
            encoder(x)
            print(time.perf_counter() - start, flush=True)
        elif command == 'save':
            torch.save(encoder(x).float(), file)
            print('saved', flush=True)


def _batch(batch_size: int) -> torch.Tensor:
    return torch.randn(batch_size, 3, 256, 256, generator=torch.Generator().manual_seed(1))


def encoder_rows(args: argparse.Namespace) -> list[dict]:
    """Every path of a precision in its own worker, timed batch by batch in turn."""
    rows = []
    with tempfile.TemporaryDirectory(prefix='encode-speed-') as folder:
        for precision in ('fp32', 'bf16'):
            workers = [Worker(path, args) for path in encoder_paths(args, precision)]
            try:
                ref = workers[0].embeddings(folder)
                seconds = [[] for _ in workers]
                for _ in range(args.iters):
                    for worker, spent in zip(workers, seconds):
                        spent.append(worker.time_batch())
                for worker, spent in zip(workers, seconds):
                    path = worker.path
                    row = dict(model=path.model, path=path.name, precision=precision, fast=path.fast)
                    row['images'] = args.batch_size * path.processes
                    row.update(s=statistics.median(spent), **worker.ready)
                    if path.model == 'Gswin':
                        row['cos'] = F.cosine_similarity(worker.embeddings(folder), ref).min().item()
                    rows.append(row)
            finally:
                for worker in workers:
                    worker.close()
            print(f'# done: {precision}', file=sys.stderr, flush=True)
    for row in rows:
        row['img_s'] = row['images'] / row['s']
    return rows


class GswinBlocks(nn.Module):
    """The blocks of a Gswin stage alone, with a global window made beforehand: (B, H, W, C) -> same."""

    def __init__(self, stage: nn.Module, global_window: torch.Tensor) -> None:
        super().__init__()
        self.stage, self.global_window = stage, global_window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage.run_blocks(x, self.global_window)


def _eager_and_compiled(module: nn.Module, precision: str) -> tuple:
    autocast = torch.autocast('cpu', dtype=torch.bfloat16, enabled=precision == 'bf16')

    def eager(t):
        with torch.no_grad(), autocast:
            return module(t)

    compiled = torch.compile(eager, dynamic=False)

    def compiled_fn(t):
        with inductor_config.patch(freezing=True):
            return compiled(t)

    return eager, compiled_fn


def block_rows(args: argparse.Namespace) -> list[dict]:
    """One stage at 384 channels, 16x16: Gswin's 3 blocks (with and without its GWG) vs timm Swin-T's 6 blocks.

    The three are timed in turn, eager first, then compiled.
    """
    gswin_stage = _build('Gswin').backbone.stages[2].eval()
    gswin_stage.downsample = None  # the blocks and their global window only
    swin_stage = _build('Swin').backbone.model.layers[2].blocks.eval()
    x = torch.randn(args.batch_size, 16, 16, 384, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        global_window = gswin_stage.gwg(x)
    modules = {
        'Gswin stage 3 (GWG + 3 blocks)': gswin_stage,
        'Gswin stage 3 (3 blocks)': GswinBlocks(gswin_stage, global_window),
        'Swin-T stage 3 (6 blocks)': swin_stage,
    }
    rows = []
    for precision in ('fp32', 'bf16'):
        fns = {name: _eager_and_compiled(module, precision) for name, module in modules.items()}
        eager_s = _timed_in_turn([eager for eager, _ in fns.values()], x, args.iters)
        compiled_s = _timed_in_turn([compiled for _, compiled in fns.values()], x, args.iters)
        for name, e, c in zip(fns, eager_s, compiled_s):
            rows.append(dict(model=name, precision=precision, eager_ms=e * 1e3, compiled_ms=c * 1e3))
        print(f'# done: stage 3 blocks {precision}', file=sys.stderr, flush=True)
    return rows


def _machine() -> str:
    model = next(
        (line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name')), 'CPU'
    )
    return (
        f'{model}, {os.cpu_count()} cores, {torch.get_num_threads()} threads; '
        f'ATen kernels {torch.backends.cpu.get_cpu_capability()}; bf16: {cpu_bf16_support()[1]}; '
        f'torch {torch.__version__}'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--baseline-rev', help='also time the Gswin of this git revision (the reference row)')
    parser.add_argument('--eager-only', action='store_true', help='skip the compiled path')
    parser.add_argument('--avx2', action='store_true', help='also run with ATEN_CPU_CAPABILITY=avx2')
    parser.add_argument('--blocks', action='store_true', help='also compare the blocks of one stage with Swin-T')
    parser.add_argument(
        '--processes', type=int, default=1, help="also time today's Gswin as this many processes, threads shared out"
    )
    parser.add_argument('--cache-dir', help='inductor cache (default: a fresh one, so the compile time is cold)')
    parser.add_argument('--worker', nargs=3, metavar=('MODEL', 'PRECISION', 'REV'), help=argparse.SUPPRESS)
    parser.add_argument('--worker-fast', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--worker-keep-memory', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--worker-threads', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        serve_worker(args)
        return
    with tempfile.TemporaryDirectory(prefix='inductor-') as fresh:
        os.environ['TORCHINDUCTOR_CACHE_DIR'] = args.cache_dir or fresh
        register_all_modules()
        print(f'# Gswin (paper size) encoding, 256x256, batch {args.batch_size}, {args.iters} timed batches')
        print(f'# {_machine()}\n')
        print('| model | path | precision | images/s | vs first row | compile (s) | min cosine vs first row |')
        print('|---|---|---|---|---|---|---|')
        rows = encoder_rows(args)
        for r in rows:
            base = next(b for b in rows if b['model'] == r['model'] and b['precision'] == r['precision'])
            ratio = f'{r["img_s"] / base["img_s"]:.2f}x' if r['model'] == 'Gswin' else '-'
            compile_s = f'{r["compile_s"]:.0f}' if r['fast'] else '-'
            cos = f'{r["cos"]:.5f}' if 'cos' in r else '-'
            path = r['path'] + (' (compile failed: eager)' if r['fast'] and not r['compiled'] else '')
            model = 'Swin-T (timm)' if r['model'] == 'Swin' else r['model']
            print(f'| {model} | {path} | {r["precision"]} | {r["img_s"]:.1f} | {ratio} | {compile_s} | {cos} |')
        if args.blocks:
            keep_freed_cpu_memory()  # both stages alike, as in the index command
            print(f'\n| blocks at 384 channels, 16x16, batch {args.batch_size} | precision | eager ms | compiled ms |')
            print('|---|---|---|---|')
            for r in block_rows(args):
                print(f'| {r["model"]} | {r["precision"]} | {r["eager_ms"]:.0f} | {r["compiled_ms"]:.0f} |')
    sys.stdout.flush()
    if args.avx2:
        print('\n## again with ATEN_CPU_CAPABILITY=avx2\n', flush=True)
        child = [a for a in sys.argv[1:] if a not in ('--avx2', '--blocks')] + ['--eager-only']
        env = dict(os.environ, ATEN_CPU_CAPABILITY='avx2')
        env.pop('TORCHINDUCTOR_CACHE_DIR', None)
        subprocess.run([sys.executable, __file__, *child], env=env, check=True)


if __name__ == '__main__':
    main()
