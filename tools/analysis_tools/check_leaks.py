"""Near-duplicate images across datasets, splits and folders, and the exclusion list they give.

    python tools/analysis_tools/check_leaks.py \\
        --config ucm=configs/cmpagl_ucm.py,data_root=../shared/data/ucm_captions \\
        --config demo=configs/cmpagl_demo.py \\
        --folder archive=/data/archive:train \\
        --out work_dirs/leaks

``--config NAME=CONFIG[,KEY=VALUE...]`` reads every split that the config's train,
val and test dataloaders name (the overrides after the config apply to it
alone; ``--cfg-options`` to every config). ``--folder NAME=DIR[:heldout|:train]``
reads every image file under DIR; a folder is held out unless marked ``:train``.
Splits named by ``--held-out-splits`` (default val, test, holdout) are held out,
every other split trains. Pairs are looked for across groups (a split of a
config, or a folder), never inside one.

Writes ``pairs.json``, ``pairs.csv``, ``report.md`` and ``exclusions.json`` into
``--out`` and prints the exclusion list's sha256. A training config drops the
listed images with ``RSCaptionDataset(exclude=dict(file='.../exclusions.json',
source=NAME))``. The method and its threshold: docs/leakage.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault('HF_HUB_OFFLINE', '1')

from mmengine.config import DictAction  # noqa: E402  (light: the inputs are checked before torch loads)

from rsretrieval.cli import fail  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Find near-duplicate images across datasets, splits and folders')
    parser.add_argument(
        '--config',
        dest='configs',
        action='append',
        default=[],
        metavar='NAME=CONFIG[,KEY=VALUE...]',
        help='a dataset config: every split its train/val/test dataloaders read (repeatable)',
    )
    parser.add_argument(
        '--folder',
        dest='folders',
        action='append',
        default=[],
        metavar='NAME=DIR[:heldout|:train]',
        help='every image file under DIR, held out unless marked :train (repeatable)',
    )
    parser.add_argument('--out', required=True, help='folder for pairs.json, pairs.csv, report.md, exclusions.json')
    parser.add_argument('--threshold', type=int, help='largest distance of a pair in bits (default: the measured one)')
    parser.add_argument(
        '--held-out-splits',
        nargs='+',
        default=None,
        metavar='SPLIT',
        help='config splits whose images training must not see (default: val test holdout)',
    )
    parser.add_argument('--near-margin', type=int, help='report near misses up to this many bits above the threshold')
    parser.add_argument('--workers', type=int, help='hashing processes (default: the CPUs this process may use)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='overrides for every config, e.g. data_root=PATH'
    )
    args = parser.parse_args()
    if not args.configs and not args.folders:
        parser.error('give at least one --config or --folder (two groups at least: a config has several splits)')
    if args.workers is not None and args.workers < 1:
        parser.error(f'--workers must be 1 or more, got {args.workers}')
    return args


def main() -> None:
    args = parse_args()
    from rsretrieval.analysis.leakage import DEFAULT_NEAR_MARGIN, DEFAULT_THRESHOLD, check_leaks
    from rsretrieval.analysis.leakage_inputs import (
        DEFAULT_HELD_OUT_SPLITS,
        LeakCheckError,
        parse_config_spec,
        parse_folder_spec,
        read_groups,
    )
    from rsretrieval.analysis.leakage_report import pair_counts, write_results
    from rsretrieval.utils import register_all_modules

    held_out_splits = tuple(args.held_out_splits or DEFAULT_HELD_OUT_SPLITS)
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    near_margin = DEFAULT_NEAR_MARGIN if args.near_margin is None else args.near_margin
    start = time.perf_counter()
    try:
        specs = [parse_config_spec(text) for text in args.configs] + [parse_folder_spec(t) for t in args.folders]
        register_all_modules()
        groups = read_groups(specs, held_out_splits, args.cfg_options)
        print_groups(groups)
        result = check_leaks(
            groups, threshold=threshold, near_margin=near_margin, held_out_splits=held_out_splits,
            workers=args.workers, progress_stream=sys.stdout,
        )  # fmt: skip
        files = write_results(result, args.out)
    except LeakCheckError as err:
        fail(str(err))
    method = result.method.describe()
    print(
        f'{result.images:,} images hashed ({method["hash"]}, {method["bits"]} bits, {method["windows"]} windows) '
        f'and searched in {result.seconds["total"]:.1f} s ({count(result.workers, "process", "processes")}); '
        f'reading the configs and folders took {time.perf_counter() - start - result.seconds["total"]:.1f} s'
    )
    print(f'pairs at {result.threshold} bits or closer: {len(result.pairs):,}')
    for (a, b, kind), pairs in sorted(pair_counts(result.pairs).items(), key=lambda item: (-item[1], item[0])):
        print(f'  {a} ~ {b} ({kind}): {pairs:,}')
    near = f'{result.threshold + 1}-{result.threshold + result.near_margin}'
    print(f'near misses ({near} bits, not excluded): {len(result.near_misses):,}')
    print(f'wrote {files.pairs_json}, {files.pairs_csv}, {files.report}')
    print(f'exclusion list: {files.exclusions} ({count(len(result.exclusions), "training image")})')
    print(f'exclusion list sha256: {files.exclusions_sha256}')


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``'1 image'``, ``'2,100 images'``."""
    return f'{number:,} {noun if number == 1 else plural or noun + "s"}'


def print_groups(groups: list) -> None:
    """One line per group: label, images, held out or training, where it came from."""
    for group in groups:
        role = 'held out' if group.held_out else 'training'
        others = f', {count(group.other_files, "other file")} not read' if group.other_files else ''
        print(f'{group.label}: {count(len(group.filenames), "image")}, {role} ({group.origin}{others})')


if __name__ == '__main__':
    main()
