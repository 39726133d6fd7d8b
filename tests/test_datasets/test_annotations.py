import json

import pytest
from conftest import SHARED_DATA, requires_shared

from rsretrieval.datasets import AnnotationError, detect_format, load_annotations

UCM = SHARED_DATA / 'ucm_captions' / 'annotations'
CAPTIONS_ONLY = SHARED_DATA / 'captions_only'


def _karpathy(tmp_path, images):
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps({'images': images}))
    return path


def test_karpathy_split_filter(tmp_path):
    path = _karpathy(
        tmp_path,
        [
            {'filename': 'a.png', 'split': 'train', 'sentences': [{'raw': 'A b.'}, {'raw': 'c'}]},
            {'filename': 'b.png', 'split': 'test', 'sentences': [{'tokens': ['x', 'y']}]},
        ],
    )
    assert detect_format(path) == 'karpathy'
    train = load_annotations(path, 'train')
    assert [r.filename for r in train] == ['a.png'] and train[0].captions == ('A b.', 'c')
    test = load_annotations(path, 'test')
    assert test[0].captions == ('x y',)


def test_precomp_both_layouts(tmp_path):
    (tmp_path / 'train_caps.txt').write_text('a\nb\nc\nd\n')
    (tmp_path / 'train_filename.txt').write_text('1.jpg\n2.jpg\n')
    (tmp_path / 'test_caps.txt').write_text('a\nb\nc\n')
    (tmp_path / 'test_filename.txt').write_text('1.jpg\n2.jpg\n1.jpg\n')
    train = load_annotations(tmp_path, 'train')
    assert [(r.filename, r.captions) for r in train] == [('1.jpg', ('a', 'b')), ('2.jpg', ('c', 'd'))]
    test = load_annotations(tmp_path / 'test_caps.txt', 'test', 'precomp')
    assert [(r.filename, r.captions) for r in test] == [('1.jpg', ('a', 'c')), ('2.jpg', ('b',))]
    assert test[0].sources == (f'{tmp_path / "test_caps.txt"}:1', f'{tmp_path / "test_caps.txt"}:3')


def test_albef_merges_entries(tmp_path):
    path = tmp_path / 'train.json'
    path.write_text(json.dumps([{'image': 'x.tif', 'caption': 'one'}, {'image': 'x.tif', 'caption': ['two', 'three']}]))
    assert detect_format(path) == 'albef'
    (rec,) = load_annotations(path, 'train')
    assert rec.filename == 'x.tif' and rec.captions == ('one', 'two', 'three')


def test_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / 'bad.json'
    path.write_text('{"images": [\n  {"filename": "a.png",\n  oops}\n]}')
    with pytest.raises(AnnotationError, match=r'bad\.json:3:\d+: malformed JSON'):
        load_annotations(path, 'train')


def test_precomp_count_mismatch(tmp_path):
    (tmp_path / 'train_caps.txt').write_text('a\nb\nc\n')
    (tmp_path / 'train_filename.txt').write_text('1.jpg\n2.jpg\n')
    with pytest.raises(AnnotationError, match='has 3 captions but .*train_filename.txt has 2 filenames'):
        load_annotations(tmp_path, 'train')


def test_unknown_split(tmp_path):
    path = _karpathy(tmp_path, [{'filename': 'a.png', 'split': 'train', 'sentences': [{'raw': 'a'}]}])
    with pytest.raises(AnnotationError, match=r"unknown split 'tset'.*\['train'\]"):
        load_annotations(path, 'tset')
    (tmp_path / 'train_caps.txt').write_text('a\n')
    (tmp_path / 'train_filename.txt').write_text('1.jpg\n')
    with pytest.raises(AnnotationError, match=r"unknown split 'val'.*splits present: \['train'\]"):
        load_annotations(tmp_path, 'val', 'precomp')


def test_duplicate_filename_and_empty_line(tmp_path):
    path = _karpathy(
        tmp_path,
        [
            {'filename': 'a.png', 'split': 'train', 'sentences': [{'raw': 'a'}]},
            {'filename': 'a.png', 'split': 'train', 'sentences': [{'raw': 'b'}]},
        ],
    )
    with pytest.raises(AnnotationError, match="'a.png' is listed twice"):
        load_annotations(path, 'train')
    (tmp_path / 'train_caps.txt').write_text('a\n\nb\n')
    (tmp_path / 'train_filename.txt').write_text('1.jpg\n\n3.jpg\n')
    with pytest.raises(AnnotationError, match=r'train_filename.txt:2: empty line'):
        load_annotations(tmp_path, 'train', 'precomp')
    # An empty caption line is kept as an (empty) caption slot for the dataset to judge.
    (tmp_path / 'train_filename.txt').write_text('1.jpg\n2.jpg\n3.jpg\n')
    assert [r.captions for r in load_annotations(tmp_path, 'train', 'precomp')] == [('a',), ('',), ('b',)]


@requires_shared
def test_real_ucm_karpathy():
    records = {s: load_annotations(UCM / 'dataset_ucm.json', s) for s in ('train', 'val', 'test')}
    assert {s: len(r) for s, r in records.items()} == {'train': 1680, 'val': 210, 'test': 210}
    assert sum(len(r) for r in records.values()) == 2100
    assert sum(len(rec.captions) for r in records.values() for rec in r) == 10500


@requires_shared
def test_real_ucm_precomp_matches_json_val():
    precomp = load_annotations(UCM / 'precomp', 'test')
    val = load_annotations(UCM / 'dataset_ucm.json', 'val')
    assert len(precomp) == 210 and sum(len(r.captions) for r in precomp) == 1050
    assert {r.filename for r in precomp} == {r.filename for r in val}
    train = load_annotations(UCM / 'precomp', 'train')
    assert len(train) == 1680 and all(len(r.captions) == 5 for r in train)


@requires_shared
def test_real_rsitmd_and_sydney():
    test = load_annotations(CAPTIONS_ONLY / 'rsitmd' / 'precomp', 'test')
    assert len(test) == 452 and sum(len(r.captions) for r in test) == 2260
    albef = load_annotations(CAPTIONS_ONLY / 'rsitmd' / 'albef_json' / 'rsitmd_test.json', 'test')
    assert len(albef) == 452 and sum(len(r.captions) for r in albef) == 2260
    train = load_annotations(CAPTIONS_ONLY / 'rsitmd' / 'precomp', 'train')
    assert len(train) == 4291 and sum(len(r.captions) for r in train) == 21455
    sydney_json = CAPTIONS_ONLY / 'sydney_captions' / 'dataset_sydney.json'
    splits = {s: len(load_annotations(sydney_json, s)) for s in ('train', 'val', 'test')}
    assert splits == {'train': 497, 'val': 58, 'test': 58} and sum(splits.values()) == 613
    sydney_precomp = load_annotations(CAPTIONS_ONLY / 'sydney_captions' / 'precomp', 'test')
    assert len(sydney_precomp) == 58


def test_text_that_is_not_utf8_is_named(tmp_path):
    folder = tmp_path / 'precomp'
    folder.mkdir()
    (folder / 'test_caps.txt').write_bytes(b'a good caption\nanother one\nbad \xff\xfe byte\n')
    (folder / 'test_filename.txt').write_text('a.jpg\nb.jpg\nc.jpg\n')
    with pytest.raises(AnnotationError, match=r'test_caps\.txt:3: not UTF-8 text'):
        load_annotations(folder, 'test')
    (tmp_path / 'k.json').write_bytes(b'{"images": [{"filename": "\xe9.jpg"}]}')
    with pytest.raises(AnnotationError, match=r'k\.json: not UTF-8 text \(byte 26\)'):
        load_annotations(tmp_path / 'k.json', 'test')
