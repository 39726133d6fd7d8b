"""Annotation values of the wrong type fail naming the file, the entry, the field, what was expected and found."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from rsretrieval.datasets import AnnotationError, load_annotations
from rsretrieval.datasets.annotation_formats import describe, expect_dict, require_list, require_str, require_str_list
from rsretrieval.registry import DATASETS


def _karpathy_images() -> list[dict]:
    return [
        {'filename': f'{i}.png', 'split': 'test', 'sentences': [{'raw': f'image {i}', 'tokens': ['image', str(i)]}]}
        for i in range(3)
    ]


def _nwpu_data() -> dict:
    entry = {'filename': 'bridge_001.png', 'split': 'test', 'raw': 'a', 'raw_1': 'b', 'raw_2': 'c'}
    return {'bridge': [dict(entry, raw_3='d', raw_4='e')]}


def _albef_data() -> list[dict]:
    return [{'image': 'a.png', 'caption': ['one', 'two']}, {'image': 'b.png', 'caption': 'three'}]


@pytest.fixture
def karpathy_root(tmp_path):
    """Three tiny images and a valid Karpathy file listing them (test split)."""
    (tmp_path / 'images').mkdir()
    for i in range(3):
        Image.fromarray(np.full((4, 4, 3), 50 * i, np.uint8)).save(tmp_path / 'images' / f'{i}.png')
    return tmp_path


def _build_karpathy(root, images):
    (root / 'ann.json').write_text(json.dumps({'images': images}))
    cfg = dict(type='RSCaptionDataset', data_root=str(root), ann_file='ann.json', data_prefix=dict(img_path='images'))
    return DATASETS.build(dict(cfg, split='test', test_mode=True))


# ------------------------------------------------------------ the issue's two cases
def test_a_filename_that_is_a_number_names_file_entry_and_field(karpathy_root):
    images = _karpathy_images()
    images[1]['filename'] = 7
    with pytest.raises(AnnotationError) as err:
        _build_karpathy(karpathy_root, images)
    path = karpathy_root / 'ann.json'
    assert str(err.value) == f'{path}[images][1]: key "filename" must be a string, got int 7'


def test_sentences_null_names_file_entry_and_field(karpathy_root):
    images = _karpathy_images()
    images[1]['sentences'] = None
    with pytest.raises(AnnotationError) as err:
        _build_karpathy(karpathy_root, images)
    path = karpathy_root / 'ann.json'
    assert str(err.value) == f'{path}[images][1] (1.png): key "sentences" must be a list, got null'


def test_the_valid_file_builds(karpathy_root):
    assert _build_karpathy(karpathy_root, _karpathy_images()).captions == ['image 0', 'image 1', 'image 2']


# ------------------------------------------------------------------ every format
def _set(*path_and_value):
    *path, key, value = path_and_value

    def change(data):
        for step in path:
            data = data[step]
        data[key] = value

    return change


def _delete(*path):
    def change(data):
        for step in path[:-1]:
            data = data[step]
        del data[path[-1]]

    return change


KARPATHY_CASES = {
    'entry-a-string': (_set('images', 1, 'x'), "[images][1]: expected an object, got str 'x'"),
    'filename-empty': (
        _set('images', 1, 'filename', ' '),
        '[images][1]: key "filename" must be a non-empty string, got str \' \'',
    ),
    'filename-list': (
        _set('images', 1, 'filename', ['1.png']),
        '[images][1]: key "filename" must be a string, got list [\'1.png\']',
    ),
    'split-a-number': (_set('images', 1, 'split', 3), '[images][1] (1.png): key "split" must be a string, got int 3'),
    'split-missing': (_delete('images', 1, 'split'), '[images][1] (1.png): missing key "split"'),
    'sentences-an-object': (
        _set('images', 1, 'sentences', {}),
        '[images][1] (1.png): key "sentences" must be a list, got dict {}',
    ),
    'sentences-empty': (_set('images', 1, 'sentences', []), "[images][1] (1.png): image '1.png' has no sentence"),
    'sentence-a-number': (
        _set('images', 1, 'sentences', 0, 5),
        '[images][1][sentences][0] (1.png): expected an object, got int 5',
    ),
    'raw-a-number': (
        _set('images', 1, 'sentences', 0, 'raw', 5),
        '[images][1][sentences][0] (1.png): key "raw" (or a "tokens" list) must be a string, got int 5',
    ),
    'raw-null-tokens-null': (
        lambda d: d['images'][1]['sentences'][0].update(raw=None, tokens=None),
        '[images][1][sentences][0] (1.png): key "tokens" must be a list of strings, got null',
    ),
    'token-a-number': (
        lambda d: d['images'][1]['sentences'][0].update(raw=None, tokens=['a', 2]),
        '[images][1][sentences][0] (1.png): item 1 of key "tokens" must be a string, got int 2',
    ),
    'neither-raw-nor-tokens': (
        lambda d: d['images'][1]['sentences'].__setitem__(0, {'sentid': 3}),
        '[images][1][sentences][0] (1.png): missing key "raw" (or a "tokens" list)',
    ),
    'images-an-object': (_set('images', {}), ': key "images" must be a list, got dict {}'),
    # an entry of another split is checked too: the file fails whichever split is built first
    'entry-of-another-split': (
        lambda d: d['images'].append({'filename': '9.png', 'split': 'train', 'sentences': None}),
        '[images][3] (9.png): key "sentences" must be a list, got null',
    ),
}

ALBEF_CASES = {
    'entry-a-list': (_set(1, ['b.png']), "[1]: expected an object, got list ['b.png']"),
    'image-a-number': (_set(1, 'image', 3), '[1]: key "image" must be a string, got int 3'),
    'image-missing': (_delete(1, 'image'), '[1]: missing key "image"'),
    'caption-an-object': (
        _set(1, 'caption', {}),
        '[1] (b.png): key "caption" must be a string or a list of strings, got dict {}',
    ),
    'caption-item-null': (
        _set(0, 'caption', 1, None),
        '[0] (a.png): item 1 of key "caption" must be a string, got null',
    ),
    'caption-empty-list': (_set(1, 'caption', []), '[1] (b.png): key "caption" holds no caption'),
}

NWPU_CASES = {
    'filename-a-list': (
        _set('bridge', 0, 'filename', ['a']),
        '[bridge][0]: key "filename" must be a string, got list [\'a\']',
    ),
    'split-a-number': (
        _set('bridge', 0, 'split', 1),
        '[bridge][0] (bridge_001.png): key "split" must be a string, got int 1',
    ),
    'caption-an-object': (
        _set('bridge', 0, 'raw_2', {}),
        "[bridge][0] (bridge_001.png): caption field 'raw_2' must be a string, got dict {}",
    ),
    'class-null': (_set('bridge', None), "[bridge]: class 'bridge' must hold a list of image entries, got null"),
}


def _check(tmp_path, name, data, change, ann_format, expected):
    change(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationError) as err:
        load_annotations(path, 'test', ann_format)
    assert str(err.value) == f'{path}{expected}'


@pytest.mark.parametrize('change, expected', KARPATHY_CASES.values(), ids=KARPATHY_CASES.keys())
def test_karpathy(tmp_path, change, expected):
    _check(tmp_path, 'ann.json', {'images': _karpathy_images()}, change, 'karpathy', expected)


@pytest.mark.parametrize('change, expected', ALBEF_CASES.values(), ids=ALBEF_CASES.keys())
def test_albef(tmp_path, change, expected):
    _check(tmp_path, 'ann_test.json', _albef_data(), change, 'albef', expected)


@pytest.mark.parametrize('change, expected', NWPU_CASES.values(), ids=NWPU_CASES.keys())
def test_nwpu(tmp_path, change, expected):
    _check(tmp_path, 'dataset_nwpu.json', _nwpu_data(), change, 'nwpu', expected)


@pytest.mark.parametrize(
    'ann_format, data, expected',
    [
        ('karpathy', [], ': Karpathy format needs a top-level object with an "images" list, got list []'),
        ('albef', {'images': []}, ": ALBEF format needs a top-level JSON list, got dict {'images': []}"),
        ('nwpu', 'x', ": NWPU-Captions format needs a top-level JSON object keyed by scene class, got str 'x'"),
    ],
)
def test_a_wrong_top_level_says_what_it_found(tmp_path, ann_format, data, expected):
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationError) as err:
        load_annotations(path, 'test', ann_format)
    assert str(err.value) == f'{path}{expected}'


# ------------------------------------------------------------------ the accessors
def test_describe_shows_the_type_and_a_short_value():
    assert describe(None) == 'null'
    assert describe(True) == 'bool True'
    assert describe('x' * 100) == f"str '{'x' * 36}..."


def test_the_accessors_return_what_they_check():
    entry = {'name': 'a.png', 'tags': ['x', 'y'], 'caption': 'one'}
    assert expect_dict(entry, 'f[0]') is entry
    assert require_str(entry, 'name', 'f[0]', non_empty=True) == 'a.png'
    assert require_list(entry, 'tags', 'f[0]') == ['x', 'y']
    assert require_str_list(entry, 'caption', 'f[0]', allow_str=True) == ['one']


@pytest.mark.parametrize(
    'read, message',
    [
        (lambda e: require_str(e, 'size', 'f[0]'), 'f[0]: key "size" must be a string, got int 3'),
        (
            lambda e: require_str(e, 'blank', 'f[0]', non_empty=True),
            'f[0]: key "blank" must be a non-empty string, got str \'\\t\'',
        ),
        (lambda e: require_str(e, 'gone', 'f:4', label='column "gone"'), 'f:4: missing column "gone"'),
        (lambda e: require_list(e, 'size', 'f[0]'), 'f[0]: key "size" must be a list, got int 3'),
        (
            lambda e: require_str_list(e, 'caption', 'f[0]'),
            'f[0]: key "caption" must be a list of strings, got str \'one\'',
        ),
        (lambda e: require_str_list(e, 'mixed', 'f[0]'), 'f[0]: item 1 of key "mixed" must be a string, got float 2.5'),
        (lambda e: expect_dict(e['mixed'], 'f[0][mixed]'), "f[0][mixed]: expected an object, got list ['a', 2.5]"),
    ],
    ids=['str', 'non-empty', 'label', 'list', 'str-list', 'str-list-item', 'dict'],
)
def test_the_accessors_name_where_what_and_what_was_found(read, message):
    entry = {'size': 3, 'blank': '\t', 'caption': 'one', 'mixed': ['a', 2.5]}
    with pytest.raises(AnnotationError) as err:
        read(entry)
    assert str(err.value) == message
