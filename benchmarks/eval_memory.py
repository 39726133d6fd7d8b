"""Peak memory of ranking a whole test set: block by block versus the full matrix.

``python benchmarks/eval_memory.py [--images 10921] [--captions 54605] [--modes MODE ...]``

Modes: ``blockwise`` and ``full`` (no reranker), ``full+smr`` (two reranked matrices) and
``candidates+smr`` (SMR's top-K candidates only, as the loops evaluate it).

Each mode runs in its own process on random unit embeddings (5 captions per image) and
reports its peak resident memory (``ru_maxrss``) and time; the metrics of every mode are
checked to agree. 10,921 x 54,605 is RSICD's whole collection (the paper's scale target).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run_mode(mode: str, n_img: int, n_txt: int, dim: int) -> dict:
    import torch

    from rsretrieval.evaluation import recall_at_k, recall_at_k_blockwise

    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(n_img, dim, generator=g), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(n_txt, dim, generator=g), dim=-1)
    txt2img = [t * n_img // n_txt for t in range(n_txt)]
    img2txt = [[] for _ in range(n_img)]
    for t, i in enumerate(txt2img):
        img2txt[i].append(t)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if mode == 'blockwise':
        metrics = recall_at_k_blockwise(lambda a, b, c, d: img[a:b] @ txt[c:d].T, n_img, n_txt, img2txt, txt2img)
    else:
        sims = img @ txt.T
        if mode == 'full+smr':
            from rsretrieval.rerankers import SMR

            i2t, t2i = SMR()(sims)
            metrics = recall_at_k(i2t, t2i, img2txt, txt2img)
        elif mode == 'candidates+smr':
            from rsretrieval.evaluation import recall_at_k_reranked
            from rsretrieval.rerankers import SMR

            (i2t, _), (t2i, _) = SMR().rerank_candidates(sims)
            metrics = recall_at_k_reranked(sims, i2t, t2i, img2txt, txt2img)
        else:
            metrics = recall_at_k(sims, sims, img2txt, txt2img)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(mode=mode, seconds=seconds, peak_gb=peak / 2**20, added_gb=(peak - base) / 2**20, metrics=metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=10921)
    parser.add_argument('--captions', type=int, default=54605)
    parser.add_argument('--dim', type=int, default=256)
    parser.add_argument(
        '--modes', nargs='+', default=['blockwise', 'full'], choices=['blockwise', 'full', 'full+smr', 'candidates+smr']
    )
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_mode(args.child, args.images, args.captions, args.dim)))
        return
    matrix_gb = args.images * args.captions * 4 / 2**30
    print(f'{args.images} images x {args.captions} captions (a float32 matrix: {matrix_gb:.2f} GB)')
    print('| mode | time (s) | peak RSS (GB) | added by ranking (GB) | mR |')
    print('|---|---|---|---|---|')
    results = []
    for mode in args.modes:
        cmd = [sys.executable, __file__, '--child', mode, '--images', str(args.images),
               '--captions', str(args.captions), '--dim', str(args.dim)]  # fmt: skip
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        results.append(r)
        print(f'| {mode} | {r["seconds"]:.1f} | {r["peak_gb"]:.2f} | {r["added_gb"]:.2f} | {r["metrics"]["mR"]:.4f} |')
    for group in (('blockwise', 'full'), ('full+smr', 'candidates+smr')):
        found = [r['metrics'] for r in results if r['mode'] in group]
        if len(found) > 1 and any(m != found[0] for m in found):
            raise SystemExit(f'the metrics of {group} differ')


if __name__ == '__main__':
    main()
