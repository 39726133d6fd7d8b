"""Seeded random mutations of valid annotation files: a dataset builds, or fails naming the file.

Every built-in format gets a small valid annotation file in its real layout and tiny PNG
images. Each case draws a few mutations with a seed of its own (a value replaced by one of
another type, a key or an item deleted, junk keys, a truncated file, bytes that are not
UTF-8, a wrong top level, lines added, dropped or garbled in the precomp text files, ...)
and builds ``RSCaptionDataset`` from the result, with the format named and left to
detection. Building must succeed or raise the project's own errors naming the annotation
file: ``AnnotationError``, or ``FileNotFoundError`` for an image the file lists. Any other
exception (a raw ``TypeError``, ``KeyError``, ``IndexError``, ...) fails the test, which
lists every such case with its mutations and where the exception was raised. Each case has
a seed of its own, so one is replayed alone: ``_run_case(FORMATS[name], index, root)`` with
``root`` holding the images (see the ``roots`` fixture).
"""

from __future__ import annotations

import copy
import json
import random
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsretrieval.datasets import AnnotationError, AnnotationFormat, ImageRecord, load_annotations
from rsretrieval.registry import ANNOTATION_FORMATS, DATASETS

SEED = 30
CASES_PER_FORMAT = 150
# values of every JSON type, to put where another type is expected
WRONG_VALUES = (0, 7, -1, 2.5, float('nan'), None, True, False, '', ' ', 'junk', [], [1], ['a', 2], {}, {'raw': 1})
JUNK_KEYS = ('junk', '', 'images', 'filename', 'split', 'raw', 'raw_5', 'tokens', 'caption', 'image', 'sentences')
# stand-ins that json.dumps cannot write, swapped for raw text once the file is written
MARKERS = {
    '@HUGE-NUMBER@': b'1' * 5000,  # beyond Python's int() digit limit
    '@DEEP-NESTING@': b'[' * 100_000 + b']' * 100_000,  # beyond the parser's recursion limit
}
NON_UTF8 = (b'\xff', b'\xfe\xff', b'\xc3', b'\xed\xa0\x80')


@dataclass(frozen=True)
class Layout:
    """One format's valid annotations: what to write, the images they list, the splits."""

    name: str
    ann: str  # the annotation file (a folder for precomp), relative to the root
    images: tuple[str, ...]  # relative to the image folder
    splits: tuple[str, ...]
    valid: Callable[[], object]  # the JSON content, or {file name: text} for precomp


def _karpathy() -> dict:
    splits = ('train', 'train', 'val', 'test')
    images = []
    for i, split in enumerate(splits):
        sentences = [
            {'tokens': ['an', 'image', str(i)], 'raw': f'An image {i}, caption {j}.', 'imgid': i, 'sentid': 2 * i + j}
            for j in range(2)
        ]
        images.append({'filename': f'{i}.png', 'imgid': i, 'sentences': sentences, 'split': split, 'sentids': [0, 1]})
    return {'images': images, 'dataset': 'fuzz'}


def _nwpu() -> dict:
    data = {}
    for cls in ('airport', 'beach'):
        data[cls] = []
        for i, split in enumerate(('train', 'val', 'test')):
            entry = {'filename': f'{cls}_{i + 1:03d}.png', 'split': split, 'imgid': i}
            for k, key in enumerate(('raw', 'raw_1', 'raw_2', 'raw_3', 'raw_4')):
                entry[key] = f'a {cls} number {i}, caption {k}'
                entry['sentids' if k == 0 else f'sentids_{k}'] = 5 * i + k
            data[cls].append(entry)
    return data


def _albef() -> list:
    return [
        {'image': 'a.png', 'caption': ['a first caption of a', 'a second caption of a']},
        {'image': 'b.png', 'caption': 'the one caption of b'},
        {'image': 'a.png', 'caption': ['a third caption of a']},
    ]


def _precomp() -> dict[str, str]:
    return {
        # train: one filename line per image, two consecutive captions each
        'train_caps.txt': 'a field of crops\ngreen crops in rows\na white plane\na plane on a runway\n',
        'train_filename.txt': 'p.png\nq.png\n',
        # test: one filename line per caption
        'test_caps.txt': 'a river bend\nwater between trees\na river and a road\n',
        'test_filename.txt': 'r.png\nr.png\np.png\n',
    }


FORMATS = {
    layout.name: layout
    for layout in (
        Layout('karpathy', 'dataset.json', ('0.png', '1.png', '2.png', '3.png'), ('train', 'val', 'test'), _karpathy),
        Layout(
            'nwpu',
            'dataset_nwpu.json',
            tuple(f'{c}/{c}_{i:03d}.png' for c in ('airport', 'beach') for i in (1, 2, 3)),
            ('train', 'val', 'test'),
            _nwpu,
        ),
        Layout('albef', 'albef_test.json', ('a.png', 'b.png'), ('test',), _albef),
        Layout('precomp', 'precomp', ('p.png', 'q.png', 'r.png'), ('train', 'test'), _precomp),
    )
}


# ----------------------------------------------------------------- JSON mutations
def _nodes(value: object, path: tuple = ()) -> list[tuple[tuple, object]]:
    """Every (path, value) of a JSON tree, the root first."""
    found = [(path, value)]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _nodes(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _nodes(item, (*path, index))
    return found


def _at(data: object, path: tuple) -> object:
    for step in path:
        data = data[step]
    return data


def _replace(data: object, rng: random.Random) -> tuple[object, str]:
    if not _nodes(data)[1:]:
        return _wrong_top_level(data, rng)
    path, _ = rng.choice(_nodes(data)[1:])
    value = rng.choice((*WRONG_VALUES, *MARKERS)) if rng.random() < 0.9 else _junk_value(rng)
    _at(data, path[:-1])[path[-1]] = copy.deepcopy(value)
    return data, f'set {list(path)} to {value!r}'


def _delete(data: object, rng: random.Random) -> tuple[object, str]:
    if not _nodes(data)[1:]:
        return data, 'nothing to delete'
    path, _ = rng.choice(_nodes(data)[1:])
    del _at(data, path[:-1])[path[-1]]
    return data, f'delete {list(path)}'


def _add_junk_key(data: object, rng: random.Random) -> tuple[object, str]:
    objects = [(path, node) for path, node in _nodes(data) if isinstance(node, dict)]
    if not objects:
        return data, 'no object for a junk key'
    path, node = rng.choice(objects)
    key, value = rng.choice(JUNK_KEYS), _junk_value(rng)
    node[key] = value
    return data, f'add {key!r}: {value!r} to {list(path)}'


def _duplicate_item(data: object, rng: random.Random) -> tuple[object, str]:
    lists = [(path, node) for path, node in _nodes(data) if isinstance(node, list) and node]
    if not lists:
        return data, 'no list to duplicate an item of'
    path, node = rng.choice(lists)
    index = rng.randrange(len(node))
    node.append(copy.deepcopy(node[index]))
    return data, f'duplicate {list(path)}[{index}]'


def _empty_container(data: object, rng: random.Random) -> tuple[object, str]:
    containers = [(path, node) for path, node in _nodes(data) if isinstance(node, (dict, list))]
    if not containers:
        return data, 'no list or object to empty'
    path, node = rng.choice(containers)
    node.clear()
    return data, f'empty {list(path)}'


def _wrong_top_level(data: object, rng: random.Random) -> tuple[object, str]:
    value = rng.choice(WRONG_VALUES)
    return copy.deepcopy(value), f'top level {value!r}'


def _junk_value(rng: random.Random) -> object:
    return rng.choice((*WRONG_VALUES, 'x.png', '0.png', 'train', 'test', ['x'], {'raw': 'r', 'tokens': 3}))


TREE_MUTATIONS = (_replace, _replace, _replace, _delete, _delete, _add_junk_key, _duplicate_item, _empty_container)


def _mutated_json(valid: object, rng: random.Random) -> tuple[bytes, list[str]]:
    """``valid`` with 1 to 3 tree mutations, written; sometimes one byte mutation after."""
    data, done = copy.deepcopy(valid), []
    for _ in range(rng.randint(1, 3)):
        mutate = _wrong_top_level if rng.random() < 0.04 else rng.choice(TREE_MUTATIONS)
        data, what = mutate(data, rng)
        done.append(what)
    raw = json.dumps(data).encode()
    for marker, text in MARKERS.items():
        raw = raw.replace(json.dumps(marker).encode(), text)
    if rng.random() < 0.2:
        raw, what = _mutate_bytes(raw, rng)
        done.append(what)
    return raw, done


def _mutate_bytes(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(raw) + 1)
    kind = rng.choice(('truncate', 'not utf-8', 'bom', 'empty'))
    if kind == 'truncate':
        return raw[:at], f'truncate at byte {at}'
    if kind == 'not utf-8':
        bad = rng.choice(NON_UTF8)
        return raw[:at] + bad + raw[at:], f'insert {bad!r} at byte {at}'
    if kind == 'bom':
        return b'\xef\xbb\xbf' + raw, 'UTF-8 byte order mark'
    return b'', 'empty file'


# --------------------------------------------------------------- text mutations
def _mutated_precomp(valid: dict[str, str], split: str, rng: random.Random) -> tuple[dict[str, bytes], list[str]]:
    """The precomp files with 1 or 2 line or byte mutations of the built split's files."""
    files = {name: text.encode() for name, text in valid.items()}
    done = []
    for _ in range(rng.randint(1, 2)):
        name = rng.choice((f'{split}_caps.txt', f'{split}_filename.txt'))
        if name not in files:
            continue
        mutated, what = _mutate_lines(files[name], rng) if rng.random() < 0.7 else _mutate_bytes(files[name], rng)
        if mutated is None:
            del files[name]
        else:
            files[name] = mutated
        done.append(f'{name}: {what}')
    return files, done


def _mutate_lines(raw: bytes, rng: random.Random) -> tuple[bytes | None, str]:
    lines = raw.split(b'\n')[:-1]
    at = rng.randrange(len(lines)) if lines else 0
    kind = rng.choice(('drop', 'repeat', 'blank', 'replace', 'swap', 'crlf', 'separator', 'delete file'))
    if kind == 'drop' and lines:
        del lines[at]
    elif kind == 'repeat' and lines:
        lines.insert(at, lines[at])
    elif kind == 'blank':
        lines.insert(at, rng.choice((b'', b' ', b'\t')))
    elif kind == 'replace' and lines:
        lines[at] = rng.choice((b'7', b'-1', b'2.5', b'null', b'[]', b'{}', b'no_such.png', b'p.png', b'\t', b' \x00'))
    elif kind == 'swap' and len(lines) > 1:
        lines[0], lines[-1] = lines[-1], lines[0]
    elif kind == 'crlf':
        return b''.join(line + b'\r\n' for line in lines), 'CRLF line ends'
    elif kind == 'separator' and lines:
        lines[at] += rng.choice(('\u2028', '\x85', '\x0c')).encode()  # within the line, not a line end
    elif kind == 'delete file':
        return None, 'delete the file'
    return b''.join(line + b'\n' for line in lines), f'{kind} line {at + 1}'


# ------------------------------------------------------------------- the cases
@pytest.fixture(scope='module')
def roots(tmp_path_factory) -> dict[str, Path]:
    """A root per format with its tiny images in ``images/``."""
    roots = {}
    for name, layout in FORMATS.items():
        root = tmp_path_factory.mktemp(name)
        for i, image in enumerate(layout.images):
            path = root / 'images' / image
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((4, 4, 3), 30 * i, np.uint8)).save(path)
        roots[name] = root
    return roots


def _write_case(layout: Layout, root: Path, index: int) -> tuple[str, list[str]]:
    """Write case ``index`` of ``layout`` under ``root``: the split to build and the mutations."""
    rng = random.Random(f'{SEED}-{layout.name}-{index}')
    split = rng.choice(layout.splits)
    ann = root / layout.ann
    if layout.name == 'precomp':
        ann.mkdir(exist_ok=True)
        for old in ann.iterdir():
            old.unlink()
        files, done = _mutated_precomp(layout.valid(), split, rng)
        for name, raw in files.items():
            (ann / name).write_bytes(raw)
    else:
        raw, done = _mutated_json(layout.valid(), rng)
        ann.write_bytes(raw)
    return split, done


def _build(layout: Layout, root: Path, split: str, ann_format: str):
    return DATASETS.build(
        dict(
            type='RSCaptionDataset',
            data_root=str(root),
            ann_file=layout.ann,
            ann_format=ann_format,
            data_prefix=dict(img_path='images'),
            split=split,
            test_mode=True,
            serialize_data=False,  # mmengine's serialisation runs gc.collect(), a large share of a build here
        )
    )


def _outcome(build: Callable[[], object], ann: Path) -> tuple[str, str | None]:
    """What building gave (``built`` or the error's type) and the problem with it, if any."""
    try:
        ds = build()
    except (AnnotationError, FileNotFoundError) as err:
        if str(ann) not in str(err):
            return type(err).__name__, f'{type(err).__name__} without the annotation file: {err}'
        return type(err).__name__, None
    except Exception as err:  # noqa: BLE001 - any other error is what this test looks for
        frame = traceback.extract_tb(err.__traceback__)[-1]
        return type(err).__name__, f'raw {type(err).__name__}: {err} (at {frame.filename}:{frame.lineno})'
    if not (ds.captions and all(isinstance(c, str) and c for c in ds.captions)):
        return 'built', f'built with captions {ds.captions!r}'
    return 'built', None


def _run_case(layout: Layout, index: int, root: Path) -> list[tuple[str, str | None, str]]:
    """Write case ``index`` and build it with the format named and detected: (outcome, problem, what)."""
    split, done = _write_case(layout, root, index)
    results = []
    for ann_format in (layout.name, 'auto'):
        outcome, problem = _outcome(partial(_build, layout, root, split, ann_format), root / layout.ann)
        what = f'{layout.name} case {index} (split {split!r}, ann_format={ann_format!r}): {"; ".join(done)}'
        results.append((outcome, problem, what))
    return results


@pytest.mark.parametrize('name', sorted(FORMATS))
def test_mutated_annotations_build_or_fail_naming_the_file(roots, name):
    layout, root = FORMATS[name], roots[name]
    outcomes: Counter[str] = Counter()
    problems = []
    for index in range(CASES_PER_FORMAT):
        for outcome, problem, what in _run_case(layout, index, root):
            outcomes[outcome] += 1
            if problem:
                problems.append(f'{what}\n    -> {problem}')
    assert not problems, f'{len(problems)} of {2 * CASES_PER_FORMAT} builds:\n' + '\n'.join(problems)
    # the mutations reach the readers (the unmutated files build: the next test)
    assert outcomes['AnnotationError'] > CASES_PER_FORMAT // 2, outcomes


@pytest.mark.parametrize('name', sorted(FORMATS))
def test_the_unmutated_files_build(roots, name, tmp_path):
    layout = FORMATS[name]
    ann = tmp_path / layout.ann
    if name == 'precomp':
        ann.mkdir()
        for file, text in layout.valid().items():
            (ann / file).write_text(text)
    else:
        ann.write_text(json.dumps(layout.valid()))
    (tmp_path / 'images').symlink_to(roots[name] / 'images')
    for split in layout.splits:
        for ann_format in (name, 'auto'):
            assert _build(layout, tmp_path, split, ann_format).captions


# ------------------------------------------- what the fuzzing found, as plain tests
@pytest.mark.parametrize(
    'raw, message',
    [
        (b'{"images": ' + b'1' * 5000 + b'}', 'unreadable JSON: Exceeds the limit (4300 digits)'),
        (b'[' * 100_000 + b']' * 100_000, 'JSON nested too deeply to read'),
    ],
    ids=['number-too-long', 'nesting-too-deep'],
)
def test_json_that_python_cannot_parse_is_named(tmp_path, raw, message):
    path = tmp_path / 'ann.json'
    path.write_bytes(raw)
    with pytest.raises(AnnotationError) as err:
        load_annotations(path, 'test')
    assert str(err.value).startswith(f'{path}: {message}')


def test_precomp_without_captions_is_a_count_mismatch(tmp_path):
    (tmp_path / 'test_caps.txt').write_text('')
    (tmp_path / 'test_filename.txt').write_text('r.png\nr.png\np.png\n')
    with pytest.raises(
        AnnotationError, match=r'test_caps\.txt has 0 captions but .*test_filename\.txt has 3 filenames'
    ):
        load_annotations(tmp_path, 'test', 'precomp')


def test_a_line_separator_inside_a_caption_does_not_end_its_line(tmp_path):
    (tmp_path / 'test_caps.txt').write_text('a river\u2028bend\r\nwater\x0cand trees\n')
    (tmp_path / 'test_filename.txt').write_text('r.png\np.png\n')
    records = load_annotations(tmp_path, 'test', 'precomp')
    assert [(r.filename, r.captions) for r in records] == [
        ('r.png', ('a river\u2028bend',)),
        ('p.png', ('water\x0cand trees',)),
    ]


class _UncaptionedImages(AnnotationFormat):
    """A test format whose every image comes without a caption."""

    def detect(self, source):
        return False

    def read(self, source, split):
        return [ImageRecord('a.png', (), ())]


def test_an_image_without_captions_is_refused_whatever_the_format(tmp_path):
    path = tmp_path / 'ann.list'
    path.write_text('a.png\n')
    ANNOTATION_FORMATS.register_module('uncaptioned_images', module=_UncaptionedImages)
    try:
        with pytest.raises(AnnotationError) as err:
            load_annotations(path, 'test', 'uncaptioned_images')
    finally:
        ANNOTATION_FORMATS._module_dict.pop('uncaptioned_images')
    assert str(err.value) == f"{path}: image 'a.png' has no caption"
