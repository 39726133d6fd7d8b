"""Image-text pairs per second and peak memory of the full CMPAGL training step.

python benchmarks/train_step.py [--batch-sizes 16 64] [--dtypes fp32 bf16] [--backbones gswin swin-t]
                                [--text bert-base] [--iters 10] [--compile] [--json OUT]

One step is what the training loop runs per batch: ``model.train_step`` on a
batch as the loader delivers it (uint8 256x256 images, caption strings, ids):
normalisation and host-to-device copy, tokenisation, the Gswin image encoder,
the 6-layer text encoder, the momentum encoders and ITC with its 65,536-entry
queue, the optimized triplet loss, ITM with hard negatives through the 6-layer
fusion encoder, MLM, backward and the AdamW step (fused where the device has it).
The same step with timm's Swin-T in place of Gswin is measured in the same run,
and the table gives each rate against Swin-T's at the same batch size and dtype.

Paper sizes: ``--text bert-base`` (default) builds the 12-layer BERT-base
(width 768, bert-base-uncased's vocabulary) split 6 + 6, randomly initialised
(the cost does not depend on the weights); ``--text minilm-l6`` uses the
packaged MiniLM-L6 weights (width 384) of ``configs/cmpagl_rsicd_minilm-l6.py``.

Every variant runs in its own process (clean peak memory, no shared compile
cache). Captions are distinct in every step (as in one epoch), so nothing is
served from the tokenisation cache. ``--sync-every-step`` reads every loss back
to the host after each step, as a loop that logs each step does; without it the
device runs ahead (the training loop reads losses once per logging interval).
Peak memory is the device's peak allocation on a GPU, the process's peak
resident set on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from paper_size import use_random_bert_base  # noqa: E402

BACKBONES = {
    'gswin': 'gswin',  # the paper's Gswin, from the model config's `image_backbones`
    'swin-t': dict(type='Swin'),  # timm Swin-T (depths 2-2-6-2, window 8) at 256x256
    'swin-gswin-layout': 'swin_gswin_layout',  # Swin blocks in Gswin's 1-1-3-1 stage layout (an extra row)
}
WORDS = (
    'many green trees are planted around the white buildings near a parking lot with cars some boats are '
    'moored in the harbour beside the bridge over a river several storage tanks stand in an industrial area '
    'the playground has a red track and a green football field two baseball diamonds lie next to the road '
    'a large airport with planes and runways sparse residential houses dense forest bare land pond meadow'
).split()


def synthetic_batches(n: int, batch_size: int, seed: int = 0) -> list[dict]:
    """``n`` loader-style batches: uint8 ``(3, 256, 256)`` images and distinct captions."""
    import torch

    g = torch.Generator().manual_seed(seed)
    batches = []
    for step in range(n):
        lengths = torch.randint(8, 22, (batch_size,), generator=g).tolist()
        captions = [
            ' '.join(WORDS[int(i)] for i in torch.randint(len(WORDS), (length,), generator=g)) + f' {step} {b}'
            for b, length in enumerate(lengths)
        ]
        images = [torch.randint(0, 256, (3, 256, 256), dtype=torch.uint8, generator=g) for _ in range(batch_size)]
        image_ids = torch.randperm(10921, generator=g)[:batch_size].tolist()
        samples = dict(
            caption=captions,
            image_id=image_ids,
            caption_id=[5 * i for i in image_ids],
            sample_idx=list(range(step * batch_size, (step + 1) * batch_size)),
        )
        batches.append(dict(inputs=images, data_samples=samples))
    return batches


def build(args: argparse.Namespace, backbone: str, dtype: str, device):
    """The CMPAGL model of ``args.config`` with the chosen backbone and text size, and its optimizer."""
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper

    from rsretrieval.registry import MODELS
    from rsretrieval.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(args.config)
    model_cfg = cfg.model.to_dict()
    choice = BACKBONES[backbone]
    model_cfg['backbone'] = cfg.image_backbones[choice].to_dict() if isinstance(choice, str) else dict(choice)
    if args.text == 'bert-base':
        model_cfg = use_random_bert_base(model_cfg, args.tokenizer)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).to(device)
    model.train()
    wrapper = 'AutocastOptimWrapper' if dtype == 'bf16' else 'OptimWrapper'
    optim_cfg = dict(cfg.optim_wrapper.to_dict(), type=wrapper)
    optim_cfg['optimizer'] = dict(optim_cfg['optimizer'], fused=not args.no_fused)
    if dtype == 'bf16':
        optim_cfg['dtype'] = 'bfloat16'
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    if args.compile:
        for name in ('backbone', 'text_encoder', 'fusion_head'):
            getattr(model, name).compile()
    return model, optim_wrapper


def run_variant(args: argparse.Namespace, backbone: str, batch_size: int, dtype: str) -> dict:
    import torch

    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model, optim_wrapper = build(args, backbone, dtype, device)
    batches = synthetic_batches(args.warmup + args.iters, batch_size)
    if device.type == 'cuda':  # the loader pins its batches (pin_memory=True)
        for b in batches:
            b['inputs'] = [t.pin_memory() for t in b['inputs']]

    def sync() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    def step(batch: dict) -> None:
        log_vars = model.train_step(batch, optim_wrapper)
        if args.sync_every_step:
            [float(v) for v in log_vars.values()]

    for b in batches[: args.warmup]:
        step(b)
    sync()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for b in batches[args.warmup :]:
        step(b)
    sync()
    seconds = time.perf_counter() - start
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    params = sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
    return dict(
        backbone=backbone,
        batch_size=batch_size,
        dtype=dtype,
        pairs_per_s=batch_size * args.iters / seconds,
        ms_per_step=1e3 * seconds / args.iters,
        peak_gb=peak,
        trainable_m=params,
    )


def device_name(device: str) -> str:
    import torch

    if device.startswith('cuda'):
        return torch.cuda.get_device_name(torch.device(device))
    return f'CPU, {torch.get_num_threads()} threads'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='configs/cmpagl_rsicd_minilm-l6.py')
    parser.add_argument('--batch-sizes', nargs='+', type=int, default=[16, 64])
    parser.add_argument('--dtypes', nargs='+', choices=['fp32', 'bf16'], default=['fp32', 'bf16'])
    parser.add_argument('--backbones', nargs='+', choices=list(BACKBONES), default=['gswin', 'swin-t'])
    parser.add_argument('--text', choices=['bert-base', 'minilm-l6'], default='bert-base')
    parser.add_argument('--tokenizer', help='local tokenizer folder (default: the packaged MiniLM-L6 one)')
    parser.add_argument('--device', default=None, help='default: cuda when available')
    parser.add_argument('--iters', type=int, default=10, help='timed steps per variant')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps first (compilation, allocator)')
    parser.add_argument('--compile', action='store_true', help='torch.compile the three encoders')
    parser.add_argument('--no-fused', action='store_true', help='plain (foreach) AdamW instead of fused')
    parser.add_argument('--sync-every-step', action='store_true', help='read every loss on the host each step')
    parser.add_argument('--json', help='also write the rows to this JSON file')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device is None:
        import torch

        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.child:
        backbone, batch_size, dtype = args.child.split(',')
        print(json.dumps(run_variant(args, backbone, int(batch_size), dtype)))
        return

    rows = []
    print(f'# CMPAGL train step, text {args.text}, {device_name(args.device)}', flush=True)
    for batch_size in args.batch_sizes:
        for dtype in args.dtypes:
            for backbone in args.backbones:
                child = list(sys.argv[1:])
                cmd = [sys.executable, os.path.abspath(__file__), *child, '--device', args.device,
                       '--child', f'{backbone},{batch_size},{dtype}']  # fmt: skip
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f'{backbone}, batch {batch_size}, {dtype}: failed (exit {proc.returncode})')
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(
                    f'{backbone} batch {batch_size} {dtype}: {row["pairs_per_s"]:.1f} pairs/s, '
                    f'{row["ms_per_step"]:.0f} ms/step, peak {row["peak_gb"]:.2f} GB',
                    flush=True,
                )
    print()
    print('| image encoder | batch | dtype | pairs/s | ms/step | peak memory (GB) | vs Swin-T |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        ref = next(
            (
                o['pairs_per_s']
                for o in rows
                if o['backbone'] == 'swin-t' and (o['batch_size'], o['dtype']) == (r['batch_size'], r['dtype'])
            ),
            None,
        )
        ratio = f'{r["pairs_per_s"] / ref:.2f}x' if ref else '-'
        print(
            f'| {r["backbone"]} | {r["batch_size"]} | {r["dtype"]} | {r["pairs_per_s"]:.1f} | '
            f'{r["ms_per_step"]:.0f} | {r["peak_gb"]:.2f} | {ratio} |'
        )
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(device=device_name(args.device), text=args.text, rows=rows), f, indent=1)


if __name__ == '__main__':
    main()
