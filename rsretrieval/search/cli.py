"""Search an image archive with a trained model (``rsretrieval-retrieve``, ``tools/retrieve.py``).

Subcommands::

    index  CONFIG CHECKPOINT IMAGE_DIR INDEX_DIR     embed every image under IMAGE_DIR (resumable)
    search INDEX_DIR "query" ["query" ...]           text -> images, over an index
    search-image CONFIG CHECKPOINT IMAGE [IMAGE ...] --captions FILE    image -> captions
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # nothing is downloaded at run time

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402

from .archive_index import ArchiveIndex, ArchiveIndexError, find_images  # noqa: E402
from .render import Hit, results_grid, results_html, results_table  # noqa: E402

ANN_AUTO_THRESHOLD = 100_000  # images from which `--ann auto` builds an HNSW index


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _model(config: str, checkpoint: str, device: str, cfg_options: dict | None):
    from rsretrieval.apis import init_model

    return init_model(config, checkpoint, device=device, cfg_options=cfg_options)


# -------------------------------------------------------------------------- index
def cmd_index(args: argparse.Namespace) -> None:
    from rsretrieval.apis import iter_image_embeddings

    folder = Path(args.index_dir)
    if args.rebuild and folder.exists():
        for f in folder.glob('*'):
            if f.name == 'meta.json' or f.name.startswith('shard_') or f.name.startswith('ann.faiss'):
                f.unlink()
    images = find_images(args.image_dir)
    if not images:
        raise SystemExit(f'no image (JPEG, PNG, TIFF) under {args.image_dir}')
    model = _model(args.config, args.checkpoint, args.device, args.cfg_options)
    info = dict(
        config=str(Path(args.config).resolve()),
        checkpoint=str(Path(args.checkpoint).resolve()),
        checkpoint_sha256=_sha256(args.checkpoint),
        cfg_options=args.cfg_options or {},
    )
    root = Path(args.image_dir)
    probe = next(iter_image_embeddings(model, [str(root / images[0])]))[1]  # the embedding width
    index = ArchiveIndex.create(folder, args.image_dir, probe.shape[1], info)
    done = set(index.paths())
    todo = [p for p in images if p not in done]
    gone = len(done - set(images))
    print(f'{len(images)} images under {args.image_dir}: {len(done)} already indexed, {len(todo)} to encode')
    if gone:
        print(f'warning: {gone} indexed images are no longer in {args.image_dir} (kept; --rebuild drops them)')
    start = time.perf_counter()
    bar = ProgressBar(len(todo)) if todo else None
    for s in range(0, len(todo), args.shard_size):
        shard = todo[s : s + args.shard_size]
        embs = []
        for paths, emb in iter_image_embeddings(model, [str(root / p) for p in shard], args.batch_size, args.workers):
            embs.append(emb)
            for _ in paths:
                bar.update()
        index.add(shard, torch.cat(embs))
    if bar is not None:
        print()
    n = len(index)
    ann = args.ann if args.ann != 'auto' else ('hnsw' if n >= ANN_AUTO_THRESHOLD else 'none')
    if ann != 'none' and (todo or not index.has_ann):
        index.build_ann(ann)
    elapsed = time.perf_counter() - start
    rate = f', {len(todo) / elapsed:.1f} images/s' if todo and elapsed > 0 else ''
    backend = 'faiss ' + ann if index.has_ann else 'exact search'
    print(f'index {folder}: {n} images, {index.meta["embed_dim"]}-d, {backend}{rate}')


# ------------------------------------------------------------------------- search
def _write_outputs(args: argparse.Namespace, results: list, images: bool, query_images: bool = False) -> None:
    if args.html:
        Path(args.html).write_text(results_html(results, images, query_images), encoding='utf-8')
        print(f'wrote {args.html}')
    if getattr(args, 'grid', None):
        results_grid(results).save(args.grid)
        print(f'wrote {args.grid}')
    if args.json:
        data = [dict(query=q, results=[h.__dict__ for h in hits]) for q, hits in results]
        Path(args.json).write_text(json.dumps(data, indent=1), encoding='utf-8')
        print(f'wrote {args.json}')


def cmd_search(args: argparse.Namespace) -> None:
    from rsretrieval.apis import embed_texts

    index = ArchiveIndex(args.index_dir)
    recorded = index.meta['model']
    config = args.config or recorded['config']
    checkpoint = args.checkpoint or recorded['checkpoint']
    for what, path in (('config', config), ('checkpoint', checkpoint)):
        if not Path(path).is_file():
            raise SystemExit(f'the {what} recorded in the index, {path}, is gone: pass --{what}')
    if _sha256(checkpoint) != recorded['checkpoint_sha256']:
        raise ArchiveIndexError(f'{checkpoint} is not the checkpoint {index.folder} was built with')
    options = recorded.get('cfg_options') or None
    model = _model(config, checkpoint, args.device, options)
    queries = embed_texts(model, args.queries)
    scores, ids = index.search(queries, args.topk, args.backend)
    paths = index.paths()
    results = []
    for q, query in enumerate(args.queries):
        hits = [Hit(r + 1, float(scores[q, r]), index.absolute_path(paths[ids[q, r]])) for r in range(ids.shape[1])]
        results.append((query, hits))
        print(results_table(query, hits) + '\n')
    _write_outputs(args, results, images=True)


def _read_captions(path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise SystemExit(f'caption file not found: {path}')
    if file.suffix == '.json':
        captions = json.loads(file.read_text(encoding='utf-8'))
        if not isinstance(captions, list) or not all(isinstance(c, str) and c.strip() for c in captions):
            raise SystemExit(f'{path}: expected a JSON list of non-empty strings')
        return captions
    captions = []
    for n, line in enumerate(file.read_text(encoding='utf-8').splitlines(), 1):
        if not line.strip():
            raise SystemExit(f'{path}:{n}: empty line (one caption per line)')
        captions.append(line.strip())
    return captions


def cmd_search_image(args: argparse.Namespace) -> None:
    from rsretrieval.apis import embed_texts, iter_image_embeddings

    captions = _read_captions(args.captions)
    model = _model(args.config, args.checkpoint, args.device, args.cfg_options)
    text_emb = embed_texts(model, captions)
    results = []
    for paths, emb in iter_image_embeddings(model, args.images, batch_size=16):
        scores, ids = torch.sort(emb @ text_emb.T, dim=1, descending=True, stable=True)
        k = min(args.topk, len(captions))
        for path, s, i in zip(paths, scores[:, :k].tolist(), ids[:, :k].tolist()):
            hits = [Hit(r + 1, s[r], captions[i[r]]) for r in range(k)]
            results.append((path, hits))
            print(results_table(path, hits) + '\n')
    _write_outputs(args, results, images=False, query_images=True)


# ---------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='rsretrieval-retrieve', description='Search an image archive by text')
    sub = parser.add_subparsers(dest='command', required=True)

    p = sub.add_parser('index', help='embed every image under a folder into an index (resumable)')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('image_dir', help='searched recursively for .jpg .jpeg .png .tif .tiff')
    p.add_argument('index_dir', help='index folder (created, or resumed when it exists)')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--shard-size', type=int, default=4096, help='images per saved shard (what an interruption loses)')
    p.add_argument('--workers', type=int, default=0, help='image-loading worker processes')
    p.add_argument(
        '--ann',
        choices=['auto', 'none', 'hnsw', 'flat'],
        default='auto',
        help=f'faiss index: hnsw (approximate), flat (exact), none; auto = hnsw from {ANN_AUTO_THRESHOLD:,} images',
    )
    p.add_argument('--rebuild', action='store_true', help='drop what the index holds and start again')
    p.set_defaults(func=cmd_index)

    p = sub.add_parser('search', help='text -> images over an index')
    p.add_argument('index_dir')
    p.add_argument('queries', nargs='+', help='query texts')
    p.add_argument('--config', help='default: the config recorded in the index')
    p.add_argument('--checkpoint', help='default: the checkpoint recorded in the index (its hash must match)')
    p.add_argument('--topk', type=int, default=10)
    p.add_argument('--backend', choices=['auto', 'exact', 'faiss'], default='auto')
    p.add_argument('--grid', help='write a PNG grid of the results')
    p.set_defaults(func=cmd_search)

    p = sub.add_parser('search-image', help='image -> captions from a caption file')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('images', nargs='+')
    p.add_argument('--captions', required=True, help='one caption per line (.txt) or a JSON list of strings')
    p.add_argument('--topk', type=int, default=5)
    p.set_defaults(func=cmd_search_image)

    for name, p in sub.choices.items():
        p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
        if name != 'index':
            p.add_argument('--html', help='write a self-contained HTML page of the results')
            p.add_argument('--json', help='write the results as JSON')
        if name != 'search':  # search uses the options recorded in the index
            p.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides')
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if getattr(args, 'topk', 1) < 1:
        raise SystemExit('--topk must be at least 1')
    try:
        args.func(args)
    except (ArchiveIndexError, FileNotFoundError, NotADirectoryError) as err:
        raise SystemExit(f'error: {err}') from None


if __name__ == '__main__':
    main(sys.argv[1:])
