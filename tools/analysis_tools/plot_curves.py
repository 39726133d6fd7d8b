"""Training curves of one or more runs: losses per iteration, validation metrics per epoch.

``python tools/analysis_tools/plot_curves.py WORK_DIR [WORK_DIR ...] [--keys loss loss_itc] [--out curves.png]``

Reads the scalars mmengine writes (``WORK_DIR/<timestamp>/vis_data/scalars.json``; every
start of a resumed run), so it works on a run that is still going. Each loss term gets its
own axes (smoothed, the raw curve faint behind it); the last panel draws the validation mR
and R@K per epoch with the best-mR epoch marked. Several work dirs (seeds, ablations) share
the figure, one colour each.
"""

from __future__ import annotations

import argparse

from rsretrieval.cli import fail


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Plot the training curves of one or more work dirs')
    parser.add_argument('work_dirs', nargs='+', help='work dirs of training runs')
    parser.add_argument('--keys', nargs='+', help='training scalars to draw (default: every loss, lr, grad_norm)')
    parser.add_argument('--names', nargs='+', help='a label per work dir (default: the folder names)')
    parser.add_argument(
        '--smooth',
        type=int,
        help='moving-average window, in logged points (default: 1/25 of the points, at least 3, at most half)',
    )
    parser.add_argument('--out', default='curves.png', help='the figure (PNG, PDF or SVG)')
    args = parser.parse_args()
    if args.names and len(args.names) != len(args.work_dirs):
        parser.error(f'--names gives {len(args.names)} labels for {len(args.work_dirs)} work dirs')
    return args


def main() -> None:
    args = parse_args()
    from rsretrieval.analysis import NoLogsError, plot_curves, read_scalars

    names = args.names or [None] * len(args.work_dirs)
    try:
        runs = [read_scalars(path, name) for path, name in zip(args.work_dirs, names)]
    except NoLogsError as err:
        fail(str(err))
    unknown = sorted(set(args.keys or ()) - {k for run in runs for k in run.train})
    if unknown:
        known = sorted({k for run in runs for k in run.train})
        fail(f'no training scalar {", ".join(unknown)} in these runs; they have {", ".join(known)}')
    panels = plot_curves(runs, args.out, keys=args.keys, window=args.smooth)
    for run in runs:
        best = run.best_epoch()
        last = int(max(xs[-1] for xs, _ in run.train.values()))
        note = f', best mR {best[1]:.2f} at epoch {best[0]}' if best else ', no validation yet'
        print(f'{run.name}: {last} iterations{note}')
    print(f'{args.out}: {", ".join(panels)}')


if __name__ == '__main__':
    main()
