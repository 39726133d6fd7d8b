"""What a training run costs: peak memory, time per step, validation time and checkpoint sizes.

Runs ``tools/train.py CONFIG`` in a subprocess (arguments after ``--`` are passed on) and
records the memory of its process tree: the trainer's peak resident set (the kernel's
high-water mark, ``VmHWM``: exact, no sampling) and, sampled every 2 s, the proportional set
of the trainer and its loader workers together (PSS: shared pages counted once, so forked
workers are not counted twice; reading it costs the kernel a walk of the page tables, hence
the slow period). After the run it reads the
per-iteration times from mmengine's ``scalars.json``, the validation time from the log and
the size of every checkpoint the run wrote.

    python benchmarks/run_costs.py configs/cmpagl_demo.py --label demo
    python benchmarks/run_costs.py configs/cmpagl_ucm_cpu.py --label ucm-cpu -- \\
        --cfg-options data_root=data/ucm_captions train_cfg.max_epochs=1 \\
        train_dataloader.dataset.indices=640

Linux only (reads ``/proc``). The run's work dir is a temporary folder unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GB = 1e9


def _children(pid: int) -> list[int]:
    """The direct children of ``pid`` (all its threads' children)."""
    found = []
    for task in Path(f'/proc/{pid}/task').glob('*'):
        try:
            found += [int(c) for c in (task / 'children').read_text().split()]
        except OSError:
            continue
    return found


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


def _field_kb(path: str, field: str) -> int:
    """A ``Field:   N kB`` value of a /proc status-style file, 0 when the process is gone."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler(threading.Thread):
    """The trainer's peak RSS (``VmHWM``) and the peak PSS of its process tree, in the background."""

    def __init__(self, pid: int, hwm_period: float = 0.2, pss_period: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.hwm_period, self.pss_period = pid, hwm_period, pss_period
        self.peak_rss_kb = 0
        self.peak_tree_pss_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        next_pss = 0.0
        while not self.stop.is_set():
            # the high-water mark only grows: the last reading before the exit is the peak
            self.peak_rss_kb = max(self.peak_rss_kb, _field_kb(f'/proc/{self.pid}/status', 'VmHWM'))
            if time.monotonic() >= next_pss:
                pss = sum(_field_kb(f'/proc/{p}/smaps_rollup', 'Pss') for p in _tree(self.pid))
                self.peak_tree_pss_kb = max(self.peak_tree_pss_kb, pss)
                next_pss = time.monotonic() + self.pss_period
            time.sleep(self.hwm_period)


def iteration_times(work_dir: Path) -> list[float]:
    """Seconds of each logged training iteration (mmengine's ``scalars.json``)."""
    times = []
    for scalars in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in scalars.read_text().splitlines():
            record = json.loads(line)
            if 'time' in record and 'loss' in record:
                times.append(float(record['time']))
    return times


def validation_seconds(log: str) -> list[float]:
    """The ``val time: X s`` figures the evaluation loop logs."""
    return [float(x) for x in re.findall(r'val time: ([0-9.]+) s', log)]


def checkpoint_sizes(work_dir: Path) -> dict[str, int]:
    """Bytes of every checkpoint in ``work_dir``."""
    return {p.name: p.stat().st_size for p in sorted(work_dir.glob('*.pth'))}


def run(config: str, train_args: list[str], work_dir: Path) -> dict:
    """Train ``config`` once and measure it."""
    command = [sys.executable, str(ROOT / 'tools' / 'train.py'), config, '--work-dir', str(work_dir), *train_args]
    env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get('HF_HUB_OFFLINE', '1'))
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = MemorySampler(process.pid)
    sampler.start()
    log, _ = process.communicate()
    sampler.stop.set()
    sampler.join()
    wall = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f'run_costs.py: {" ".join(command)} failed ({process.returncode}):\n{log[-3000:]}')
    steps = iteration_times(work_dir)
    return {
        'config': config,
        'args': train_args,
        'wall_s': round(wall, 1),
        'peak_rss_main_gb': round(sampler.peak_rss_kb * 1024 / GB, 2),
        'peak_pss_tree_gb': round(sampler.peak_tree_pss_kb * 1024 / GB, 2),
        'iterations': len(steps),
        'step_s_median': round(statistics.median(steps[1:] or steps), 3) if steps else None,
        'step_s_first': round(steps[0], 3) if steps else None,
        'val_s': validation_seconds(log),
        'checkpoints_bytes': checkpoint_sizes(work_dir),
    }


def markdown_row(label: str, result: dict) -> str:
    """One row of the cost table in docs/benchmarks.md."""
    sizes = ', '.join(f'{name} {size / GB:.2f} GB' for name, size in result['checkpoints_bytes'].items())
    val = ', '.join(f'{v:.1f}' for v in result['val_s'])
    return (
        f'| {label} | {result["peak_rss_main_gb"]:.2f} | {result["peak_pss_tree_gb"]:.2f} | '
        f'{result["step_s_median"]} ({result["iterations"]} steps) | {val} | {sizes} |'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--label', default=None, help='the row label (default: the config name)')
    parser.add_argument('--keep', metavar='DIR', help='keep the work dir here instead of a temporary folder')
    parser.add_argument('--json', metavar='FILE', help='also write the figures as JSON')
    args, rest = parser.parse_known_args()
    train_args = rest[1:] if rest[:1] == ['--'] else rest
    with tempfile.TemporaryDirectory(prefix='run_costs_') as tmp:
        work_dir = Path(args.keep) if args.keep else Path(tmp) / 'work'
        result = run(args.config, train_args, work_dir)
    label = args.label or Path(args.config).stem
    print(json.dumps(result, indent=1))
    header = ('run', 'peak RSS, trainer (GB)', 'peak PSS, trainer + workers (GB)', 's/step, median', 'val (s)')
    print('| ' + ' | '.join((*header, 'checkpoints')) + ' |')
    print('|---|---|---|---|---|---|')
    print(markdown_row(label, result))
    if args.json:
        Path(args.json).write_text(json.dumps(dict(result, label=label), indent=1) + '\n')


if __name__ == '__main__':
    main()
