"""Time of the leakage check at NWPU-RESISC45's size and on UCM-Captions, and the distance study behind its threshold.

    python benchmarks/leak_check.py [--images 31500] [--copies 50] [--workers N] [--keep DIR]
    python benchmarks/leak_check.py --study [--every 5] [--hash-size 16] [--grid-steps 5] [--no-draft]
    python benchmarks/leak_check.py --compare-search [--images 31500]

The timing run writes ``--images`` synthetic 256x256 JPEG textures (quality 90) in
NWPU-Captions' proportions (train 70 %, val 10 %, test 20 %: three folders, the
first a training folder), with ``--copies`` of the test images replaced by
modified copies of training images (the required modifications in turn:
JPEG 75, half size, PNG, TIFF, a 5 % crop), then times the whole check (listing,
hashing, pair search, the four result files) and checks that every copy was
found and nothing else. When ``../shared/data/ucm_captions`` exists it then times
the check over UCM-Captions (``configs/cmpagl_ucm.py``: its train, val and test
splits) plus a held-out folder of 20 planted copies.

``--study`` measures what the threshold rests on, on UCM-Captions: the distance of
every pair of distinct images (2,203,950 pairs) and of each image of every
``--every``-th to its copies under every modification of
:mod:`rsretrieval.analysis.leakage_copies`; ``--hash-size``, ``--grid-steps`` (0: the
whole image only) and ``--no-draft`` measure other settings of the method.

``--compare-search`` times the pair search with faiss (what the check uses) and
with numpy's ``bitwise_count`` on random hashes of NWPU's size.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
UCM = REPO.parent / 'shared' / 'data' / 'ucm_captions'
SPLITS = (('train', 0.7, 'train'), ('val', 0.1, 'heldout'), ('test', 0.2, 'heldout'))
PLANTED = ('jpeg75', 'half', 'png', 'tif', 'crop5')
SIDE = 256


def texture(seed: int, side: int = SIDE) -> Image.Image:
    """A smooth random RGB texture (noise on coarse grids, enlarged and summed), about as
    structured as an aerial scene at the scales a perceptual hash sees."""
    rng = np.random.default_rng(seed)
    image = np.zeros((side, side, 3), np.float32)
    for cells, weight in ((4, 1.0), (8, 0.6), (16, 0.35), (32, 0.2), (64, 0.1)):
        for channel in range(3):
            grid = Image.fromarray(rng.random((cells, cells), dtype=np.float32), 'F')
            image[..., channel] += weight * np.asarray(grid.resize((side, side), Image.Resampling.BICUBIC))
    image = (image - image.min()) / (image.max() - image.min()) * 255
    return Image.fromarray(image.astype(np.uint8), 'RGB')


def _write_textures(jobs: list[tuple[int, str]]) -> None:
    for seed, path in jobs:
        texture(seed).save(path, quality=90)


def write_dataset(root: Path, images: int, copies: int, workers: int) -> dict[str, str]:
    """The synthetic folders; returns ``{copy path: source path}`` of the planted copies."""
    from rsretrieval.analysis.leakage_copies import plant_copies

    counts = [round(images * share) for _, share, _ in SPLITS]
    counts[0] += images - sum(counts)
    jobs, seed = [], 0
    for (split, _, _), count in zip(SPLITS, counts):
        (root / split).mkdir(parents=True, exist_ok=True)
        originals = count - copies if split == 'test' else count
        for i in range(originals):
            jobs.append((seed, str(root / split / f'{split}_{i:05d}.jpg')))
            seed += 1
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_textures, [jobs[i : i + 500] for i in range(0, len(jobs), 500)]))
    train = sorted(str(p) for p in (root / 'train').iterdir())
    sources = [train[i] for i in np.random.default_rng(1).choice(len(train), copies, replace=False)]
    return plant_copies(sources, str(root / 'test'), list(PLANTED), seed=2)


def timed_check(specs: list, workers: int | None, out: Path) -> tuple[object, dict[str, float]]:
    """Read the inputs, check, write the results: the result and the time of each stage."""
    from rsretrieval.analysis.leakage import check_leaks
    from rsretrieval.analysis.leakage_inputs import read_groups
    from rsretrieval.analysis.leakage_report import write_results

    start = time.perf_counter()
    groups = read_groups(specs)
    listed = time.perf_counter()
    result = check_leaks(groups, workers=workers, progress_stream=sys.stdout)
    checked = time.perf_counter()
    files = write_results(result, str(out))
    written = time.perf_counter()
    seconds = dict(
        read=listed - start,
        hash=result.seconds['hash'],
        search=result.seconds['search'],
        write=written - checked + result.seconds['exclusions'],
        total=written - start,
    )
    print(f'exclusion list sha256 {files.exclusions_sha256}')
    return result, seconds


def found_copies(result, planted: dict[str, str]) -> tuple[int, int]:
    """(planted pairs found, other pairs found)."""
    expected = {frozenset((os.path.realpath(c), os.path.realpath(s))) for c, s in planted.items()}
    found = {frozenset((os.path.realpath(p.first.path), os.path.realpath(p.second.path))) for p in result.pairs}
    return len(expected & found), len(found - expected)


TABLE_HEAD = (
    '| run | images | processes | read inputs (s) | hashing (s) | pair search (s) | exclusions + files (s) '
    '| total (s) | planted pairs found | other pairs |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
)


def synthetic_run(args: argparse.Namespace) -> str:
    from rsretrieval.analysis.leakage_inputs import parse_folder_spec
    from rsretrieval.utils.loader_workers import usable_cpus

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp) / 'images'
        start = time.perf_counter()
        planted = write_dataset(root, args.images, args.copies, args.workers or usable_cpus())
        print(f'wrote {args.images:,} synthetic images in {time.perf_counter() - start:.0f} s (not timed below)')
        specs = [parse_folder_spec(f'{split}={root / split}:{role}') for split, _, role in SPLITS]
        result, seconds = timed_check(specs, args.workers, Path(tmp) / 'out')
    return _row(f'synthetic 256x256 JPEG, {args.images:,} images', result, seconds, planted)


def ucm_run(args: argparse.Namespace) -> str:
    from rsretrieval.analysis.leakage_copies import plant_copies
    from rsretrieval.analysis.leakage_inputs import parse_config_spec, parse_folder_spec
    from rsretrieval.utils import register_all_modules

    register_all_modules()
    images = UCM / 'images'
    sources = [str(images / f'{n}.jpg') for n in np.linspace(5, 2095, 20).astype(int)]
    with tempfile.TemporaryDirectory() as tmp:
        planted = plant_copies(sources, f'{tmp}/copies', list(PLANTED), seed=0)
        specs = [
            parse_config_spec(f'ucm=configs/cmpagl_ucm.py,data_root={UCM}'),
            parse_folder_spec(f'copies={tmp}/copies'),
        ]
        result, seconds = timed_check(specs, args.workers, Path(tmp) / 'out')
    return _row('UCM-Captions (train, val, test) + 20 planted copies', result, seconds, planted)


def _row(title: str, result, seconds: dict[str, float], planted: dict[str, str]) -> str:
    hit, other = found_copies(result, planted)
    return (
        f'| {title} | {result.images:,} | {result.workers} | {seconds["read"]:.1f} | {seconds["hash"]:.1f} | '
        f'{seconds["search"]:.1f} | {seconds["write"]:.1f} | {seconds["total"]:.1f} | {hit}/{len(planted)} | {other} |'
    )


# ------------------------------------------------------------------------------------- the pair search
def compare_search(images: int, sample: int = 256) -> None:
    """faiss ``IndexBinaryFlat`` range search (what the check uses) against numpy ``bitwise_count`` in chunks,
    on random hashes of the default method's shape in NWPU's split proportions: faiss in full, numpy on
    ``sample`` query images per group, scaled to all of them."""
    from rsretrieval.analysis.leakage import DEFAULT_THRESHOLD
    from rsretrieval.analysis.leakage_hashing import WindowedPHash
    from rsretrieval.analysis.leakage_pairs import find_pairs

    method = WindowedPHash()
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (images, len(method.windows), method.bits // 8), dtype=np.uint8)
    counts = [round(images * share) for _, share, _ in SPLITS]
    counts[0] += images - sum(counts)
    group_of = np.repeat(np.arange(len(counts)), counts)
    start = time.perf_counter()
    find_pairs(codes, group_of, DEFAULT_THRESHOLD)
    faiss_seconds = time.perf_counter() - start
    numpy_seconds = 0.0
    for group in range(len(counts)):
        members, others = np.flatnonzero(group_of == group), np.flatnonzero(group_of != group)
        queries = others[:sample]
        start = time.perf_counter()
        distances = pair_distances(codes[queries, 0], codes[members])
        np.nonzero(distances <= DEFAULT_THRESHOLD)
        numpy_seconds += (time.perf_counter() - start) * len(others) / len(queries)
    print(
        f'pair search over {images:,} random {method.bits}-bit hashes x {len(method.windows)} windows: '
        f'faiss {faiss_seconds:.1f} s, numpy bitwise_count about {numpy_seconds:.0f} s '
        f'(from {sample} queries per group)'
    )


# ---------------------------------------------------------------------------------------------- the study
def pair_distances(whole: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """``[N, M]``: the smallest distance of ``whole[i]`` (``[N, bytes]``) to any window of ``windows[j]``
    (``[M, W, bytes]``)."""
    n, width = whole.shape
    m, count, _ = windows.shape
    pad = (-width) % 8
    a = np.pad(whole, ((0, 0), (0, pad))).view(np.uint64)
    b = np.pad(windows.reshape(m * count, width), ((0, 0), (0, pad))).view(np.uint64)
    out = np.empty((n, m), np.int32)
    for s in range(0, n, 32):
        out[s : s + 32] = np.bitwise_count(a[s : s + 32, None, :] ^ b[None]).sum(-1).reshape(-1, m, count).min(-1)
    return out


def study(args: argparse.Namespace) -> None:
    """The distance study on UCM-Captions (see the module docstring)."""
    import json

    from rsretrieval.analysis.leakage import DEFAULT_THRESHOLD
    from rsretrieval.analysis.leakage_copies import MODIFICATIONS, write_copy
    from rsretrieval.analysis.leakage_hashing import WindowedPHash, hash_files, shifted_windows

    windows = shifted_windows(steps=args.grid_steps) if args.grid_steps else ((0.0, 0.0, 1.0, 1.0),)
    method = WindowedPHash(args.hash_size, windows, draft=not args.no_draft)
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    with open(UCM / 'annotations' / 'dataset_ucm.json') as f:
        split_of = {im['filename']: im['split'] for im in json.load(f)['images']}
    names = sorted(split_of, key=lambda name: int(name.split('.')[0]))
    paths = [str(UCM / 'images' / name) for name in names]
    start = time.perf_counter()
    codes = hash_files(paths, method, args.workers, progress_stream=sys.stdout)
    print(f'{method.describe()}: {len(paths):,} images hashed in {time.perf_counter() - start:.1f} s')
    distances = pair_distances(codes[:, 0], codes)
    distances = np.minimum(distances, distances.T)
    upper = np.triu_indices(len(paths), 1)
    distinct = distances[upper]
    quantiles = np.quantile(distinct, [1e-4, 1e-3, 1e-2, 0.5])
    print(
        f'distinct pairs ({len(distinct):,}): min {distinct.min()}, 0.01 % {quantiles[0]:.0f}, '
        f'0.1 % {quantiles[1]:.0f}, 1 % {quantiles[2]:.0f}, median {quantiles[3]:.0f}; '
        f'at or below {threshold}: {(distinct <= threshold).sum()}'
    )
    order = np.argsort(distinct, kind='stable')[:12]
    print('closest: ' + ', '.join(f'{names[upper[0][o]]}~{names[upper[1][o]]} ({distinct[o]})' for o in order))
    print('closest pairs across splits: ' + _closest_across_splits(distinct, upper, names, split_of))
    chosen = paths[:: args.every]
    print(f'| modification | copies | max | 99th percentile | found at <= {threshold} |\n|---|---:|---:|---:|---:|')
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for name in MODIFICATIONS:
            copies = [write_copy(p, f'{tmp}/{name}_{i}', name, rng) for i, p in enumerate(chosen)]
            copy_codes = hash_files(copies, method, args.workers)
            originals = codes[:: args.every]
            one_way = pair_distances(copy_codes[:, 0], originals).diagonal()
            other_way = pair_distances(originals[:, 0], copy_codes).diagonal()
            d = np.minimum(one_way, other_way)
            print(f'| {name} | {len(d)} | {d.max()} | {np.quantile(d, 0.99):.0f} | {(d <= threshold).mean():.1%} |')


def _closest_across_splits(distinct: np.ndarray, upper: tuple, names: list[str], split_of: dict) -> str:
    splits = np.array([split_of[name] for name in names])
    across = splits[upper[0]] != splits[upper[1]]
    order = np.flatnonzero(across)[np.argsort(distinct[across], kind='stable')[:5]]
    return ', '.join(
        f'{names[upper[0][o]]} ({splits[upper[0][o]]})~{names[upper[1][o]]} ({splits[upper[1][o]]}): {distinct[o]}'
        for o in order
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=31500, help='synthetic images (NWPU-RESISC45: 31,500)')
    parser.add_argument('--copies', type=int, default=50, help='planted copies among the test images')
    parser.add_argument('--workers', type=int, help='processes (default: the CPUs this process may use)')
    parser.add_argument('--keep', help='write the synthetic images here and keep them')
    parser.add_argument('--no-ucm', action='store_true', help='skip the UCM-Captions run')
    parser.add_argument('--study', action='store_true', help='the distance study on UCM-Captions instead')
    parser.add_argument('--compare-search', action='store_true', help='faiss against numpy for the pair search instead')
    parser.add_argument('--every', type=int, default=5, help='study: copies of every N-th image')
    parser.add_argument('--hash-size', type=int, default=16, help="study: phash's hash_size")
    parser.add_argument('--grid-steps', type=int, default=5, help='study: window offsets per axis (0: whole image)')
    parser.add_argument('--no-draft', action='store_true', help='study: decode JPEG in full')
    parser.add_argument('--threshold', type=int, help='study: the threshold to count against (default: the default)')
    args = parser.parse_args()
    print(f'{os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} usable, load {os.getloadavg()[0]:.2f}')
    if args.compare_search:
        compare_search(args.images)
        return
    if args.study:
        if not UCM.is_dir():
            parser.error(f'the study needs UCM-Captions at {UCM}')
        study(args)
        return
    rows = [synthetic_run(args)]
    if UCM.is_dir() and not args.no_ucm:
        rows.append(ucm_run(args))
    print(TABLE_HEAD)
    print('\n'.join(rows))
    print(f'load after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    main()
