"""Image encoding speed on CPUs: an earlier Gswin, today's eager path and the compiled one, fp32 and bf16.

python benchmarks/encode_speed.py [--baseline-rev REV] [--batch-size 32] [--iters 5] [--eager-only] [--avx2] [--blocks]

Paper-size Gswin (256 px, random weights, seeded) behind a CMPAGL-like head
(global token -> linear 768 -> 256 -> L2 norm), encoded through
:func:`rsretrieval.apis.fast_encoding.build_image_encoder` with ``fast=False``
(the eager model) and ``fast=True`` (compiled). ``--baseline-rev`` adds the Gswin
of an earlier commit (its ``gswin.py`` read from git, the same weights) as the
reference row: the paths are timed in turn, batch by batch, so that a drift of
the machine's speed hits them alike. Reports images/s (median over ``--iters``
batches after one warm-up batch), the compile time (the first compiled call,
with a fresh inductor cache unless ``--cache-dir``), and the smallest cosine
against the reference embeddings of the same precision, plus timm Swin-T
(eager). ``--avx2`` runs it again, eager paths only, in a child process with
``ATEN_CPU_CAPABILITY=avx2`` (ATen's AVX2 kernels only).
``--blocks`` adds the block-level comparison: the blocks of one stage of Gswin
(3 blocks, 384 channels, 16x16) against those of timm Swin-T (6 blocks, same
width and map), eager and compiled. Run it under ``flock /tmp/bench.lock``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch._inductor import config as inductor_config

from rsretrieval.apis.fast_encoding import build_image_encoder, cpu_flags, native_bf16
from rsretrieval.registry import BACKBONES
from rsretrieval.utils import register_all_modules


class Head(nn.Module):
    """A backbone behind CMPAGL's image projection: what ``encode_image`` runs."""

    def __init__(self, backbone: nn.Module, embed_dim: int = 256) -> None:
        super().__init__()
        self.backbone = backbone
        self.proj = nn.Linear(backbone.out_channels, embed_dim)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.backbone(images)[:, 0]), dim=-1)


def _timed(fn, x: torch.Tensor, iters: int) -> float:
    """Median seconds of ``fn(x)`` after one warm-up call."""
    return _timed_in_turn([fn], x, iters)[0]


def _timed_in_turn(fns: list, x: torch.Tensor, iters: int) -> list[float]:
    """Median seconds of each ``fn(x)``, the functions called in turn, after one warm-up call each."""
    for fn in fns:
        fn(x)
    times = [[] for _ in fns]
    for _ in range(iters):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn(x)
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


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


def gswin_rows(args: argparse.Namespace, x: torch.Tensor) -> list[dict]:
    """Gswin: the baseline revision (eager), today's eager path and today's compiled one, per precision."""
    gswin = _build('Gswin')
    baseline = None
    if args.baseline_rev:
        baseline = Head(gswin_at(args.baseline_rev)()).eval()
        baseline.load_state_dict(gswin.state_dict())
    rows = []
    for precision in ('fp32', 'bf16'):
        paths = {}
        if baseline is not None:
            paths[f'eager at {args.baseline_rev}'] = build_image_encoder(baseline, precision, fast=False)
        paths['today (eager)'] = build_image_encoder(gswin, precision, fast=False)
        ref = next(iter(paths.values()))(x).float()
        extra = {name: {} for name in paths}
        if not args.eager_only:
            fast = build_image_encoder(gswin, precision, fast=True)
            start = time.perf_counter()
            fast(x)
            extra['fast (compiled)'] = dict(compile_s=time.perf_counter() - start, compiled=fast.compiled)
            paths['fast (compiled)'] = fast
        for name, encoder in paths.items():
            extra[name]['cos'] = F.cosine_similarity(encoder(x).float(), ref).min().item()
        seconds = _timed_in_turn(list(paths.values()), x, args.iters)
        for (name, _), s in zip(paths.items(), seconds):
            rows.append(dict(model='Gswin', path=name, precision=precision, s=s, **extra[name]))
        print(f'# done: Gswin {precision}', file=sys.stderr, flush=True)
    return rows


def encoder_rows(args: argparse.Namespace) -> list[dict]:
    x = torch.randn(args.batch_size, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    rows = gswin_rows(args, x)
    swin = _build('Swin')
    for precision in ('fp32', 'bf16'):
        eager = build_image_encoder(swin, precision, fast=False)
        rows.append(dict(model='Swin-T (timm)', path='eager', precision=precision, s=_timed(eager, x, args.iters)))
    for row in rows:
        row['img_s'] = args.batch_size / row['s']
    return rows


def block_rows(args: argparse.Namespace) -> list[dict]:
    """One stage's blocks at 384 channels, 16x16: Gswin (3 blocks) vs timm Swin-T (6 blocks)."""
    gswin_stage = _build('Gswin').backbone.stages[2].eval()
    gswin_stage.downsample = None  # the blocks and their global window only
    swin_stage = _build('Swin').backbone.model.layers[2].blocks.eval()
    x = torch.randn(args.batch_size, 16, 16, 384, generator=torch.Generator().manual_seed(2))
    rows = []
    for name, module in (('Gswin stage 3 (3 blocks + GWG)', gswin_stage), ('Swin-T stage 3 (6 blocks)', swin_stage)):
        for precision in ('fp32', 'bf16'):
            autocast = torch.autocast('cpu', dtype=torch.bfloat16, enabled=precision == 'bf16')

            def eager(t, module=module, autocast=autocast):
                with torch.no_grad(), autocast:
                    return module(t)

            compiled = torch.compile(eager, dynamic=False)

            def compiled_fn(t, compiled=compiled):
                with inductor_config.patch(freezing=True):
                    return compiled(t)

            row = dict(model=name, precision=precision, eager_ms=_timed(eager, x, args.iters) * 1e3)
            row['compiled_ms'] = _timed(compiled_fn, x, args.iters) * 1e3
            rows.append(row)
            print(f'# done: {name} {precision}', file=sys.stderr, flush=True)
    return rows


def _machine() -> str:
    model = next(
        (line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name')), 'CPU'
    )
    flags = ' '.join(f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in cpu_flags())
    return (
        f'{model}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, flags: {flags}; '
        f'ATen kernels {torch.backends.cpu.get_cpu_capability()}, native bf16: {native_bf16(torch.device("cpu"))}; '
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
    parser.add_argument('--cache-dir', help='inductor cache (default: a fresh one, so the compile time is cold)')
    args = parser.parse_args()
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
            compile_s = f'{r["compile_s"]:.0f}' if 'compile_s' in r else '-'
            cos = f'{r["cos"]:.5f}' if 'cos' in r else '-'
            path = r['path'] + ('' if r.get('compiled', True) else ' (compile failed: eager)')
            print(f'| {r["model"]} | {path} | {r["precision"]} | {r["img_s"]:.1f} | {ratio} | {compile_s} | {cos} |')
        if args.blocks:
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
