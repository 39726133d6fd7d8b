"""Tests of the example plugin's annotation format (``ann_format='tsv'``): configs, detection, errors."""

from __future__ import annotations

import importlib.metadata
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from rsretrieval.datasets import AnnotationError, detect_format, load_annotations
from rsretrieval.registry import ANNOTATION_FORMATS, DATASETS

PROJECT = Path(__file__).resolve().parents[1]
CONFIG = PROJECT / 'configs' / 'cmpagl_captions_tsv.py'
INSTALLED = any(e.name == 'example_plugin' for e in importlib.metadata.entry_points(group='rsretrieval.plugins'))
requires_install = pytest.mark.skipif(not INSTALLED, reason='pip install -e projects/example_plugin first')

# (image, caption, split): two images with two captions, one with three, lines of one image apart
ROWS = [
    ('airport_1.png', 'An airport with two planes.', 'train'),
    ('beach_1.png', 'Waves on a sandy beach', 'test'),
    ('airport_1.png', 'two white planes near a terminal', 'train'),
    ('forest_1.png', 'a dense green forest', 'val'),
    ('beach_1.png', 'a beach beside blue water', 'test'),
    ('forest_1.png', 'trees and a road', 'val'),
    ('forest_1.png', 'a road through trees', 'val'),
]


@pytest.fixture
def table_root(tmp_path: Path) -> Path:
    """A tiny image folder and its ``captions.tsv`` (with a header line)."""
    (tmp_path / 'images').mkdir()
    for i, name in enumerate(sorted({image for image, _, _ in ROWS})):
        Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)).save(tmp_path / 'images' / name)
    lines = ['image\tcaption\tsplit'] + ['\t'.join(row) for row in ROWS]
    (tmp_path / 'captions.tsv').write_text('\n'.join(lines) + '\n\n')
    return tmp_path


def _dataset_cfg(root: Path, **kwargs) -> dict:
    images = dict(img_path='images')
    return dict(type='RSCaptionDataset', data_root=str(root), ann_file='captions.tsv', data_prefix=images, **kwargs)


def test_dataset_from_a_config_naming_the_format(table_root):
    ds = DATASETS.build(_dataset_cfg(table_root, ann_format='tsv', split='val', test_mode=True))
    assert ds.image_paths == [str(table_root / 'images' / 'forest_1.png')]
    assert ds.captions == ['a dense green forest', 'trees and a road', 'a road through trees']
    assert ds.img2txt == [[0, 1, 2]] and ds.txt2img == [0, 0, 0]
    train = DATASETS.build(_dataset_cfg(table_root, ann_format='tsv', split='train'))
    assert [item['caption'] for item in train] == ['an airport with two planes', 'two white planes near a terminal']


def test_detection_finds_the_plugin_format(table_root):
    path = table_root / 'captions.tsv'
    assert 'tsv' in ANNOTATION_FORMATS.registered_names()
    assert detect_format(path) == 'tsv'
    detected = DATASETS.build(_dataset_cfg(table_root, split='test', test_mode=True))
    named = DATASETS.build(_dataset_cfg(table_root, ann_format='tsv', split='test', test_mode=True))
    assert detected.captions == named.captions == ['waves on a sandy beach', 'a beach beside blue water']
    records = load_annotations(path, 'test')
    assert records[0].sources == (f'{path}:3', f'{path}:6')  # the header is line 1


def test_the_plugin_config_builds_every_split(table_root):
    cfg = Config.fromfile(str(CONFIG))
    counts = {}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = DATASETS.build(dict(cfg[loader].dataset.to_dict(), data_root=str(table_root), pipeline=[]))
        counts[ds.split] = (ds.metainfo['num_images'], ds.metainfo['num_captions'])
    assert counts == dict(train=(1, 2), val=(1, 3), test=(1, 2))


def test_a_table_without_split_column_is_one_split(tmp_path):
    path = tmp_path / 'captions_test.tsv'
    path.write_text('a.png\tfirst\nb.png\tsecond\na.png\tthird\n')
    records = load_annotations(path, 'test')
    assert [(r.filename, r.captions) for r in records] == [('a.png', ('first', 'third')), ('b.png', ('second',))]


@pytest.mark.parametrize(
    'lines, message',
    [
        (['a.png\tone\ttrain', 'b.png two train'], r'captions\.tsv:2: expected image<TAB>caption\[<TAB>split\], got 1'),
        (['a.png\tone\ttrain', 'b.png\ttwo\ttrain\textra'], r'captions\.tsv:2: expected .* got 4 field'),
        (['a.png\tone\ttrain', 'b.png\ttwo'], r'captions\.tsv:2: 2 fields, but line 1 has 3'),
        (['a.png\tone\ttrain', '\ttwo\ttrain'], r'captions\.tsv:2: column "image" must be a non-empty string, got str'),
        (['a.png\tone\ttrain', 'b.png\ttwo\t '], r'captions\.tsv:2: column "split" must be a non-empty string'),
        (['a.png\tone\ttrain', '', 'b.png\ttwo\ttrain'], r'captions\.tsv:2: empty line'),
    ],
    ids=['no-tab', 'four-fields', 'split-missing', 'no-image', 'no-split', 'blank-line'],
)
def test_a_malformed_line_is_named(table_root, lines, message):
    (table_root / 'captions.tsv').write_text('\n'.join(lines) + '\n')
    with pytest.raises(AnnotationError, match=message):
        DATASETS.build(_dataset_cfg(table_root, ann_format='tsv', split='train'))


def test_unknown_split_lists_the_splits(table_root):
    with pytest.raises(AnnotationError, match=r"captions\.tsv: unknown split 'restval'.*\['test', 'train', 'val'\]"):
        load_annotations(table_root / 'captions.tsv', 'restval', 'tsv')


def test_a_tsv_name_alone_is_not_claimed(tmp_path):
    path = tmp_path / 'notes.tsv'
    path.write_text('no tab on this line\n')
    with pytest.raises(AnnotationError, match=r'notes\.tsv: cannot detect the annotation format.*tsv: a \.tsv file'):
        detect_format(path)


# line mutations of a valid table, and what each puts in the line it picks
FUZZ_CASES = 100
LINE_MUTATIONS = {
    'drop a tab': lambda line: line.replace(b'\t', b' ', 1),
    'add a column': lambda line: line + b'\tjunk',
    'empty the image': lambda line: line[line.index(b'\t') :],
    'empty the split': lambda line: line[: line.rindex(b'\t') + 1],
    'a number as the image': lambda line: b'7' + line[line.index(b'\t') :],
    'not UTF-8': lambda line: line + b'\xff',
    'blank': lambda line: b'',
    'a line separator in the caption': lambda line: line.replace(b'\t', '\t\u2028'.encode(), 1),
    'truncated': lambda line: line[: len(line) // 2],
}


def _mutated_table(rng: random.Random) -> tuple[bytes, list[str]]:
    lines = [b'image\tcaption\tsplit'] + ['\t'.join(row).encode() for row in ROWS]
    done = []
    for _ in range(rng.randint(1, 2)):
        at, name = rng.randrange(len(lines)), rng.choice(sorted(LINE_MUTATIONS))
        lines[at] = LINE_MUTATIONS[name](lines[at])
        done.append(f'line {at + 1}: {name}')
    return b'\n'.join(lines) + b'\n', done


def test_mutated_tables_build_or_fail_naming_the_file(table_root):
    """Seeded line mutations: a dataset builds, or fails with an error naming the table."""
    path, problems, refused = table_root / 'captions.tsv', [], 0
    for index in range(FUZZ_CASES):
        rng = random.Random(f'tsv-{index}')
        raw, done = _mutated_table(rng)
        path.write_bytes(raw)
        split = rng.choice(('train', 'val', 'test'))
        for ann_format in ('tsv', 'auto'):
            try:
                # serialize_data=False: mmengine's serialisation runs gc.collect(), most of a build here
                cfg = _dataset_cfg(table_root, ann_format=ann_format, split=split, test_mode=True, serialize_data=False)
                DATASETS.build(cfg)
            except (AnnotationError, FileNotFoundError) as err:
                refused += 1
                if str(path) not in str(err):
                    problems.append(f'case {index} {done}: {err}')
            except Exception as err:  # noqa: BLE001 - any other error is what this test looks for
                problems.append(f'case {index} {done} ({split}, {ann_format}): raw {type(err).__name__}: {err}')
    assert not problems, '\n'.join(problems)
    assert refused > FUZZ_CASES // 2


@requires_install
def test_a_config_finds_the_installed_format_without_importing_the_plugin(table_root):
    code = (
        'import sys\n'
        'from rsretrieval.datasets import load_annotations\n'
        "assert 'rsretrieval_example_plugin' not in sys.modules\n"
        f"records = load_annotations({str(table_root / 'captions.tsv')!r}, 'val', 'tsv')\n"
        'print(len(records[0].captions))\n'
    )
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == '3'
