"""The paper's seed protocol: train and test a config once per seed, then aggregate.

``python tools/misc/run_seeds.py CONFIG --seeds 0 1 2 [--gpus N] [--cfg-options ...]``

Each seed trains in ``WORK_DIR/seed_<s>`` (``randomness.seed=<s>``) and is tested on
its best validation checkpoint (``--checkpoint last`` for the final one); the test
metrics go to ``seed_<s>/test_metrics.json``. The mean ± sample standard deviation of
every metric (raw and reranked, when the config reranks) is written to
``WORK_DIR/seeds.md`` and ``WORK_DIR/seeds.json`` and printed.

Rerunning the command reuses finished seeds and resumes an interrupted one from its
last checkpoint, so a long protocol survives interruptions.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys

from rsretrieval.cli import check_inputs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train and test a config with several seeds; aggregate the metrics')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='random seeds (default: 0 1 2)')
    parser.add_argument('--work-dir', help='parent of the seed_<s> folders (default: work_dirs/<config>_seeds)')
    parser.add_argument('--gpus', type=int, default=1, help='processes per run: >1 uses tools/dist_train.sh')
    parser.add_argument(
        '--checkpoint',
        choices=['best', 'last'],
        default='best',
        help='test the best validation checkpoint (default) or the last one',
    )
    parser.add_argument('--rerank', metavar='NAME', help='any registered reranker, as tools/test.py --rerank')
    parser.add_argument('--rerank-options', nargs='+', default=[], help='as tools/test.py --rerank-options')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='passed to training and testing')
    args = parser.parse_args()
    if args.rerank_options and not args.rerank:
        parser.error('--rerank-options needs --rerank')
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds repeats a seed: {args.seeds}')
    if args.work_dir is None:
        args.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0] + '_seeds')
    check_inputs(config=args.config)
    return args


def _run(cmd: list[str]) -> None:
    print('+', ' '.join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f'failed (exit code {proc.returncode}): {" ".join(cmd)}')


def _command(script: str, gpus: int) -> list[str]:
    if gpus > 1:
        return ['bash', osp.join(REPO, 'tools', f'dist_{script}.sh')]
    return [sys.executable, osp.join(REPO, 'tools', f'{script}.py')]


def _checkpoint(work_dir: str, which: str) -> str:
    if which == 'best':
        best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')))
        if len(best) != 1:
            raise SystemExit(
                f'{work_dir}: expected one best_*.pth checkpoint, found {len(best)} '
                '(does the config validate and save the best mR?); use --checkpoint last'
            )
        return best[0]
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise SystemExit(f'{work_dir}: no last_checkpoint: training did not save a checkpoint')
    with open(marker) as f:
        return f.read().strip()


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, float]:
    work_dir = osp.abspath(osp.join(args.work_dir, f'seed_{seed}'))
    metrics_file = osp.join(work_dir, 'test_metrics.json')
    if osp.isfile(metrics_file):
        print(f'seed {seed}: reusing {metrics_file}', flush=True)
        with open(metrics_file) as f:
            return json.load(f)
    options = ['--cfg-options', f'randomness.seed={seed}', *args.cfg_options]
    config = osp.abspath(args.config)
    train = _command('train', args.gpus)
    train += [config, str(args.gpus)] if args.gpus > 1 else [config]
    train += ['--work-dir', work_dir, *options]
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        train.append('--resume')  # an interrupted run continues from its last checkpoint
    _run(train)
    checkpoint = _checkpoint(work_dir, args.checkpoint)
    test = _command('test', args.gpus)
    test += [config, checkpoint, str(args.gpus)] if args.gpus > 1 else [config, checkpoint]
    test += ['--work-dir', work_dir, '--dump-metrics', metrics_file]
    if args.rerank:
        test += ['--rerank', args.rerank]
        if args.rerank_options:
            test += ['--rerank-options', *args.rerank_options]
    test += options
    _run(test)
    with open(metrics_file) as f:
        return json.load(f)


def main() -> None:
    args = parse_args()
    from mmengine.config import Config

    from rsretrieval.evaluation import aggregate_seeds, seeds_markdown

    results = {seed: run_seed(args, seed) for seed in args.seeds}
    title = f'{osp.basename(args.config)}, seeds {", ".join(map(str, args.seeds))}'
    # a protocol label of the config (e.g. a checkpoint selected on the test split) stays with the numbers
    label = (Config.fromfile(args.config).get('test_cfg') or {}).get('label')
    if label:
        title += f' [{label}]'
    table = seeds_markdown(results, title)
    summary = aggregate_seeds(results)
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'seeds.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.work_dir, 'seeds.json'), 'w') as f:
        json.dump(
            dict(
                config=args.config,
                label=label,
                seeds={str(s): r for s, r in results.items()},
                mean={k: m for k, (m, _) in summary.items()},
                std={k: s for k, (_, s) in summary.items()},
            ),
            f,
            indent=1,
        )
    print(table)


if __name__ == '__main__':
    main()
