"""The ANNOTATION_FORMATS registry: built-ins, detection over every format, explicit names."""

import json

import numpy as np
import pytest
from PIL import Image

from rsretrieval.datasets import AnnotationError, AnnotationFormat, ImageRecord, detect_format, load_annotations
from rsretrieval.datasets.annotation_formats import annotation_file
from rsretrieval.registry import ANNOTATION_FORMATS, DATASETS

BUILT_IN = {'albef', 'karpathy', 'nwpu', 'precomp'}


class ListedImages(AnnotationFormat):
    """A test format: a ``.list`` file of image names, each captioned by its own name."""

    description = 'a .list file of image names (test)'

    def detect(self, source):
        return source.path.suffix == '.list'

    def read(self, source, split):
        names = source.path.read_text().split()
        return [ImageRecord(n, (f'a picture named {n}',), (f'{source.path}:{i + 1}',)) for i, n in enumerate(names)]


class ClaimsEveryJson(ListedImages):
    description = 'any JSON file (test)'

    def detect(self, source):
        return source.looks_like_json()


@pytest.fixture
def register():
    """Register test formats for one test; they leave the registry afterwards."""
    added = []

    def add(name, cls):
        ANNOTATION_FORMATS.register_module(name, module=cls)
        added.append(name)

    yield add
    for name in added:
        ANNOTATION_FORMATS._module_dict.pop(name)


def _karpathy(tmp_path):
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps({'images': [{'filename': 'a.png', 'split': 'test', 'sentences': [{'raw': 'x'}]}]}))
    return path


def test_built_in_formats_are_registered():
    assert BUILT_IN <= set(ANNOTATION_FORMATS.registered_names())
    assert all(issubclass(ANNOTATION_FORMATS.get(name), AnnotationFormat) for name in BUILT_IN)


def test_a_registered_format_is_read_by_name_and_by_detection(tmp_path, register):
    register('listed_images', ListedImages)
    (tmp_path / 'images').mkdir()
    for name in ('x.png', 'y.png'):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'images' / name)
    (tmp_path / 'all.list').write_text('x.png\ny.png\n')
    images = dict(img_path='images')
    cfg = dict(type='RSCaptionDataset', data_root=str(tmp_path), ann_file='all.list', data_prefix=images)
    named = DATASETS.build(dict(cfg, ann_format='listed_images', split='test', test_mode=True))
    detected = DATASETS.build(dict(cfg, split='test', test_mode=True))
    assert named.captions == detected.captions == ['a picture named x png', 'a picture named y png']
    assert detect_format(tmp_path / 'all.list') == 'listed_images'


def test_detection_refuses_two_matching_formats(tmp_path, register):
    register('claims_every_json', ClaimsEveryJson)
    path = _karpathy(tmp_path)
    message = r'ann\.json: matches several annotation formats \(claims_every_json, karpathy\); .*ann_format='
    with pytest.raises(AnnotationError, match=message):
        load_annotations(path, 'test')
    assert load_annotations(path, 'test', 'karpathy')[0].filename == 'a.png'  # naming the format settles it


def test_detection_without_a_match_lists_every_registered_format(tmp_path):
    path = tmp_path / 'captions.csv'
    path.write_text('a.png,one caption\n')
    with pytest.raises(AnnotationError) as err:
        detect_format(path)
    message = str(err.value)
    assert message.startswith(f'{path}: cannot detect the annotation format; registered formats: ')
    assert '\n' not in message and all(f'{name}: ' in message for name in BUILT_IN)


def test_an_unknown_format_name_is_refused_with_the_registered_names(tmp_path):
    path = _karpathy(tmp_path)
    with pytest.raises(ValueError, match=r"ann_format must be 'auto' or one of \[.*'karpathy'.*\], got 'karpaty'"):
        DATASETS.build(dict(type='RSCaptionDataset', ann_file=str(path), ann_format='karpaty', lazy_init=True))
    with pytest.raises(AnnotationError, match=r"Unknown ann_format 'karpaty'; use 'auto' or one of \["):
        load_annotations(path, 'test', 'karpaty')


def test_a_format_named_for_a_file_of_another_format_says_what_it_expected(tmp_path):
    with pytest.raises(AnnotationError, match='ALBEF format needs a top-level JSON list'):
        load_annotations(_karpathy(tmp_path), 'test', 'albef')


def test_detection_and_reading_parse_the_json_once(tmp_path, monkeypatch):
    calls = []
    read_json = annotation_file.read_json
    monkeypatch.setattr(annotation_file, 'read_json', lambda path: calls.append(path) or read_json(path))
    path = _karpathy(tmp_path)
    assert len(load_annotations(path, 'test')) == 1
    assert calls == [path]
