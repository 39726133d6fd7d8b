"""Throughput of the image backbones at 256x256: train step and inference, images/s.

python benchmarks/backbones.py [--batch-size 64] [--device cuda] [--dtype bf16] [--iters 20]

Gswin (paper configuration) against timm Swin-T (window 8), ViT-B/16 and GCViT-T,
all built for 256x256 inputs with random weights. A train step is forward, a
scalar loss on the global token, backward and an AdamW step. bf16 means autocast
(parameters stay fp32). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import torch

from rsretrieval.registry import BACKBONES
from rsretrieval.utils import register_all_modules

MODELS = {
    'Gswin': dict(type='Gswin'),
    'Swin-T': dict(type='Swin'),
    'ViT-B/16': dict(type='ViT'),
    'GCViT-T': dict(type='GCViT'),
}


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = BACKBONES.build(MODELS[name]).to(device)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    x = torch.randn(args.batch_size, 3, 256, 256, device=device)
    dtype = torch.bfloat16 if args.dtype == 'bf16' else torch.float32
    autocast = torch.autocast(device.type, dtype=dtype, enabled=args.dtype == 'bf16')
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == 'cuda')

    def train_step() -> None:
        with autocast:
            loss = model(x)[:, 0].float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def infer() -> None:
        with torch.no_grad(), autocast:
            model(x)

    result = dict(model=name, params=params)
    for label, fn, train in (('train', train_step, True), ('infer', infer, False)):
        model.train(train)
        for _ in range(args.warmup):
            fn()
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.iters):
            fn()
        _sync(device)
        result[label] = args.batch_size * args.iters / (time.perf_counter() - start)
    if device.type == 'cuda':
        result['peak_mem_gb'] = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dtype', choices=['fp32', 'bf16'], default=None, help='default: bf16 on GPU, fp32 on CPU')
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    device = torch.device(args.device)
    args.dtype = args.dtype or ('bf16' if device.type == 'cuda' else 'fp32')
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    register_all_modules()
    what = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
    print(f'# 256x256, batch {args.batch_size}, {args.dtype}, {what}, torch {torch.__version__}\n')
    rows = [measure(name, args, device) for name in args.models]
    base = next((r['train'] for r in rows if r['model'] == 'Swin-T'), None)
    print('| model | params (M) | train img/s | inference img/s | train vs Swin-T |')
    print('|---|---|---|---|---|')
    for r in rows:
        ratio = f'{r["train"] / base:.2f}x' if base else '-'
        print(f'| {r["model"]} | {r["params"]:.2f} | {r["train"]:.1f} | {r["infer"]:.1f} | {ratio} |')


if __name__ == '__main__':
    main()
