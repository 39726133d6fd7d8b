"""The files of a leakage check: the pairs (JSON and CSV), a markdown report and the exclusion list.

``pairs.json`` and ``pairs.csv`` hold every pair within the threshold, closest
first, with both sides' source, split, file name (as the annotation file names
it) and path; ``report.md`` counts the pairs per pair of groups and states the
method, the threshold and the time; ``exclusions.json`` is the exclusion list
(:mod:`rsretrieval.datasets.exclusions`), identified by its sha256.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from dataclasses import dataclass

from rsretrieval.datasets.exclusions import write_exclusion_list
from rsretrieval.utils.atomic_files import atomic_write
from rsretrieval.utils.progress import format_duration

from .leakage import LeakCheckResult
from .leakage_inputs import ImageRef
from .leakage_pairs import LeakPair

_SIDE_KEYS = ('source', 'split', 'filename', 'path')
#: Near misses listed by name in the report (all are counted).
NEAR_MISSES_LISTED = 20


@dataclass(frozen=True)
class LeakCheckFiles:
    """Where the results went.

    Attributes:
        pairs_json: ``pairs.json``.
        pairs_csv: ``pairs.csv``.
        report: ``report.md``.
        exclusions: ``exclusions.json``.
        exclusions_sha256: sha256 of ``exclusions.json``.
    """

    pairs_json: str
    pairs_csv: str
    report: str
    exclusions: str
    exclusions_sha256: str


def write_results(result: LeakCheckResult, out_dir: str) -> LeakCheckFiles:
    """Write the four files into ``out_dir`` (made if missing), each atomically.

    The exclusion list comes first: the report states its sha256.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, name) for name in ('pairs.json', 'pairs.csv', 'report.md', 'exclusions.json')}
    sha256 = write_exclusion_list(paths['exclusions.json'], result.exclusions, result.check_record())
    atomic_write(paths['pairs.json'], pairs_json(result))
    atomic_write(paths['pairs.csv'], pairs_csv(result.pairs))
    atomic_write(paths['report.md'], report_markdown(result, sha256))
    return LeakCheckFiles(paths['pairs.json'], paths['pairs.csv'], paths['report.md'], paths['exclusions.json'], sha256)


def _side(image: ImageRef) -> dict:
    return {key: getattr(image, key) for key in _SIDE_KEYS}


def pairs_json(result: LeakCheckResult) -> str:
    """``pairs.json``: the method, the threshold and every pair (``distance``, ``kind``, ``a``, ``b``)."""
    doc = dict(
        method=result.method.describe(),
        threshold=result.threshold,
        pairs=[dict(distance=p.distance, kind=p.kind, a=_side(p.first), b=_side(p.second)) for p in result.pairs],
    )
    return json.dumps(doc, indent=1, ensure_ascii=False) + '\n'


def pairs_csv(pairs: list[LeakPair]) -> str:
    """``pairs.csv``: one row per pair: distance, kind, then each side's source, split, filename, path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(['distance', 'kind', *(f'a_{k}' for k in _SIDE_KEYS), *(f'b_{k}' for k in _SIDE_KEYS)])
    for pair in pairs:
        writer.writerow([pair.distance, pair.kind, *_side(pair.first).values(), *_side(pair.second).values()])
    return buffer.getvalue()


def pair_counts(pairs: list[LeakPair]) -> Counter:
    """Pairs per (group label, group label, kind), the groups in the order the pairs name them."""
    return Counter((f'{p.first.source}/{p.first.split}', f'{p.second.source}/{p.second.split}', p.kind) for p in pairs)


def report_markdown(result: LeakCheckResult, exclusions_sha256: str) -> str:
    """``report.md``: the inputs, the method, the counts per pair of groups, the exclusions, near misses, time."""
    method = result.method.describe()
    lines = [
        '# Leakage check',
        '',
        f'{result.images:,} images in {len(result.groups)} groups; {method["hash"]} of {method["library"]}, '
        f'{method["bits"]} bits, over {method["windows"]} windows (the whole image and windows of '
        f'{method["window_side"]:.0%} of each side); threshold {result.threshold} bits. '
        f'{format_duration(result.seconds["total"])} ({_stages(result)}), {result.workers} hashing processes.',
        '',
        '## Groups',
        '',
        '| group | images | held out | from |',
        '|---|---:|---|---|',
        *(
            f'| {g.label} | {len(g.filenames):,} | {"yes" if g.held_out else "no"} | {g.origin}'
            + (f' ({g.other_files} other files not read)' if g.other_files else '')
            + ' |'
            for g in result.groups
        ),
        '',
        f'## Pairs at {result.threshold} bits or closer: {len(result.pairs):,}',
        '',
        *_count_table(result.pairs),
        '',
        f'## Exclusion list: {len(result.exclusions):,} training images',
        '',
        f'`exclusions.json`, sha256 `{exclusions_sha256}`: every training image with a held-out near-duplicate '
        f'(held-out splits: {", ".join(result.held_out_splits)}; held-out folders).',
        '',
        f'## Near misses ({result.threshold + 1}-{result.threshold + result.near_margin} bits): '
        f'{len(result.near_misses):,}',
        '',
        'Not pairs at this threshold, and nothing is excluded for them; look at the closest to judge the threshold '
        'on these data.',
        '',
        *_near_miss_lines(result.near_misses),
    ]
    return '\n'.join(lines) + '\n'


def _stages(result: LeakCheckResult) -> str:
    seconds = result.seconds
    return f'hashing {seconds["hash"]:.1f} s, pair search {seconds["search"]:.1f} s'


def _count_table(pairs: list[LeakPair]) -> list[str]:
    if not pairs:
        return ['None.']
    rows = sorted(pair_counts(pairs).items(), key=lambda item: (-item[1], item[0]))
    return [
        '| group | group | kind | pairs |',
        '|---|---|---|---:|',
        *(f'| {a} | {b} | {kind} | {count:,} |' for (a, b, kind), count in rows),
    ]


def _near_miss_lines(near_misses: list[LeakPair]) -> list[str]:
    lines = [f'- {p.distance} bits: {p.first.label} ~ {p.second.label}' for p in near_misses[:NEAR_MISSES_LISTED]]
    if len(near_misses) > NEAR_MISSES_LISTED:
        lines.append(f'- ... and {len(near_misses) - NEAR_MISSES_LISTED:,} more')
    return lines or ['None.']
