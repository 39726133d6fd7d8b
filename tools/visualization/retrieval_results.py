"""Top images per text query, framed green (ground truth) or red (the paper's Fig. 8).

Each tile carries its rank and score; a query whose ground-truth image is not among
its top K says where that image ranks ("ground truth at rank 37").

``python tools/visualization/retrieval_results.py SIMS.npz --queries 0 17 230 --out fig8.png``

``SIMS.npz`` is written by ``tools/test.py CONFIG CKPT --out SIMS.npz`` (with the image
paths, captions and ground truth); ``--matrix sims_t2i`` shows the reranked ranking when
the test ran with ``--rerank``.
"""

from __future__ import annotations

import argparse

from rsretrieval.cli import check_inputs


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
    args = parser.parse_args()
    check_inputs(files={args.sims: 'similarity file'})
    return args


def main() -> None:
    args = parse_args()
    import numpy as np

    from rsretrieval.evaluation import load_similarity
    from rsretrieval.visualization import caption_results, ground_truth_note, retrieval_grid, tile_label

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
    results = caption_results(sims, data['txt2img'], args.queries, args.topk)
    texts = [f'[{r.caption}] {captions[r.caption]}' for r in results]
    paths = [[data['image_paths'][i] for i in r.images] for r in results]
    labels = [[tile_label(rank, score) for rank, score in enumerate(r.scores, start=1)] for r in results]
    notes = [ground_truth_note(r) for r in results]
    grid = retrieval_grid(texts, paths, [r.matches for r in results], tile=args.tile, labels=labels, notes=notes)
    grid.save(args.out)
    for text, r, row, note in zip(texts, results, labels, notes):
        tiles = ' | '.join(f'{label} {"match" if m else "-"}' for label, m in zip(row, r.matches))
        print(f'{text}: {tiles}' + (f'; {note}' if note else ''))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
