"""Top images per text query, framed green (ground truth) or red (the paper's Fig. 8).

``python tools/visualization/retrieval_results.py SIMS.npz --queries 0 17 230 --out fig8.png``

``SIMS.npz`` is written by ``tools/test.py CONFIG CKPT --out SIMS.npz`` (with the image
paths, captions and ground truth); ``--matrix sims_t2i`` shows the reranked ranking when
the test ran with ``--rerank``.
"""

from __future__ import annotations

import argparse

import numpy as np

from rsretrieval.evaluation import load_similarity
from rsretrieval.visualization import retrieval_grid, top_images_per_caption


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Draw the top images of text queries')
    parser.add_argument('sims', help='.npz from tools/test.py --out')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--queries', type=int, nargs='+', help='caption indices')
    group.add_argument('--random', type=int, default=4, help='this many random captions (default 4)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--topk', type=int, default=5)
    parser.add_argument('--matrix', default='sims', help="'sims' (raw) or 'sims_t2i' (reranked, when saved)")
    parser.add_argument('--tile', type=int, default=160, help='image size in pixels')
    parser.add_argument('--out', default='retrieval_results.png')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    data = load_similarity(args.sims)
    if args.matrix not in data:
        keys = sorted(k for k, v in data.items() if isinstance(v, np.ndarray) and v.ndim == 2)
        raise SystemExit(f'{args.sims} has no matrix {args.matrix!r}; it has {keys}')
    if 'image_paths' not in data or 'captions' not in data:
        raise SystemExit(f'{args.sims} has no image paths or captions: save it with tools/test.py --out')
    sims, captions = data[args.matrix], data['captions']
    if args.queries is None:
        args.queries = np.random.default_rng(args.seed).choice(len(captions), args.random, replace=False).tolist()
    bad = [q for q in args.queries if not 0 <= q < len(captions)]
    if bad:
        raise SystemExit(f'caption indices {bad} are outside [0, {len(captions)})')
    ranked, matches = top_images_per_caption(sims, data['txt2img'], args.queries, args.topk)
    paths = [[data['image_paths'][i] for i in row] for row in ranked]
    texts = [f'[{q}] {captions[q]}' for q in args.queries]
    retrieval_grid(texts, paths, matches, tile=args.tile).save(args.out)
    for text, row in zip(texts, matches):
        print(f'{text}: ' + ' '.join('match' if m else '-' for m in row))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
