"""``RSCaptionDataset(exclude=...)``: the images an exclusion list names leave the split, checked."""

import json
import logging

import numpy as np
import pytest
from helpers import captured_log
from PIL import Image

from rsretrieval.datasets import AnnotationError, ExclusionEntry, write_exclusion_list
from rsretrieval.registry import DATASETS
from rsretrieval.weights.hashing import file_sha256

# six images of class folders a/ and b/, the last two in test; three captions each
NAMES = ['a/0.png', 'a/1.png', 'a/2.png', 'b/3.png', 'b/4.png', 'b/5.png']
SPLITS = ['train', 'train', 'train', 'train', 'test', 'test']


def _captions(name):
    return [f'image {name[2]} caption {j}' for j in range(3)]


def _write_images(root):
    for i, name in enumerate(NAMES):
        (root / 'images' / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 30 * i, np.uint8)).save(root / 'images' / name)


def _write_karpathy(root):
    images = [dict(filename=n, split=s, sentences=[dict(raw=c) for c in _captions(n)]) for n, s in zip(NAMES, SPLITS)]
    (root / 'ann.json').write_text(json.dumps(dict(images=images)))
    return 'ann.json'


def _write_precomp(root):
    folder = root / 'precomp'
    folder.mkdir()
    for split in ('train', 'test'):
        names = [n for n, s in zip(NAMES, SPLITS) if s == split]
        (folder / f'{split}_caps.txt').write_text(''.join(c + '\n' for n in names for c in _captions(n)))
        (folder / f'{split}_filename.txt').write_text(''.join(n + '\n' for n in names))  # one line per image
    return 'precomp'


def _write_albef(root):
    for split in ('train', 'test'):
        entries = [dict(image=n, caption=_captions(n)) for n, s in zip(NAMES, SPLITS) if s == split]
        (root / f'ann_{split}.json').write_text(json.dumps(entries))
    return 'ann_{split}.json'


WRITERS = dict(karpathy=_write_karpathy, precomp=_write_precomp, albef=_write_albef)


@pytest.fixture
def root(tmp_path):
    _write_images(tmp_path)
    _write_karpathy(tmp_path)
    return tmp_path


def _entry(root, filename, split='train', source='toy', sha256=None):
    sha = sha256 or file_sha256(str(root / 'images' / filename))
    return ExclusionEntry(source, split, filename, sha, reason='near-duplicate of a test image')


def _list(root, entries, name='exclusions.json'):
    path = root / name
    write_exclusion_list(str(path), entries, check=dict(hash='test'))
    return path


def _build(root, ann_file='ann.json', **kwargs):
    cfg = dict(type='RSCaptionDataset', data_root=str(root), ann_file=ann_file, data_prefix=dict(img_path='images'))
    return DATASETS.build(dict(cfg, **kwargs))


def _names(ds):
    return [p.split('/images/')[1] for p in ds.image_paths]


@pytest.mark.parametrize('fmt', sorted(WRITERS))
@pytest.mark.parametrize('test_mode', [False, True])
def test_exclusion_drops_exactly_the_listed_images_in_every_format(tmp_path, fmt, test_mode):
    _write_images(tmp_path)
    ann_file = WRITERS[fmt](tmp_path)
    # an entry of another split and one of another source must not touch the train split
    path = _list(
        tmp_path,
        [
            _entry(tmp_path, 'a/1.png'),
            _entry(tmp_path, './b/3.png'),  # spelt differently from the annotation: normalised
            _entry(tmp_path, 'b/4.png', split='test'),
            _entry(tmp_path, 'a/0.png', source='other'),
        ],
    )
    ds = _build(tmp_path, ann_file, split='train', test_mode=test_mode, exclude=dict(file=str(path), source='toy'))
    assert _names(ds) == ['a/0.png', 'a/2.png']
    assert ds.captions == _captions('a/0.png') + _captions('a/2.png')
    assert ds.img2txt == [[0, 1, 2], [3, 4, 5]] and ds.txt2img == [0, 0, 0, 1, 1, 1]
    assert len(ds) == (2 if test_mode else 6)
    paths = {ds.get_data_info(i)['img_path'] for i in range(len(ds))}
    assert not any(p.endswith(('a/1.png', 'b/3.png')) for p in paths)


def test_exclusion_is_logged_and_recorded_in_metainfo(root):
    path = _list(root, [_entry(root, 'a/1.png'), _entry(root, 'b/3.png')])
    with captured_log() as messages:
        ds = _build(root, split='train', exclude=dict(file=str(path), source='toy'))
    sha = file_sha256(str(path))
    assert ds.metainfo['exclusions'] == dict(file=str(path), sha256=sha, source='toy', images=2, captions=6)
    line = next(m for m in messages if 'excluded' in m)
    assert f'excluded 2 of 4 images (6 captions) listed for {"toy"!r} in {path} (sha256 {sha})' in line


def test_exclusion_applies_before_the_subset(root):
    path = _list(root, [_entry(root, 'a/0.png'), _entry(root, 'a/1.png'), _entry(root, 'a/2.png')])
    ds = _build(root, split='train', subset=dict(num_images=1), exclude=dict(file=str(path), source='toy'))
    assert _names(ds) == ['b/3.png']  # the only image left to draw from
    assert ds.metainfo['subset_of'] == 1 and ds.metainfo['exclusions']['images'] == 3


def test_exclusion_works_for_the_demo_dataset(demo_root, tmp_path):
    train = json.loads((demo_root / 'dataset_demo.json').read_text())['images']
    names = [img['filename'] for img in train if img['split'] == 'train'][:3]
    entries = [ExclusionEntry('demo', 'train', n, file_sha256(str(demo_root / 'images' / n))) for n in names]
    path = _list(tmp_path, entries)
    full = DATASETS.build(dict(type='DemoSceneDataset', data_root=str(demo_root), split='train', test_mode=True))
    ds = DATASETS.build(
        dict(
            type='DemoSceneDataset',
            data_root=str(demo_root),
            split='train',
            test_mode=True,
            exclude=dict(file=str(path), source='demo'),
        )
    )
    assert len(ds) == len(full) - 3
    assert not {p.rsplit('/', 1)[1] for p in ds.image_paths} & set(names)


def test_a_list_without_a_check_record_warns_of_a_source_it_never_names(root):
    path = _list(root, [_entry(root, 'a/1.png')])
    with captured_log(logging.WARNING) as messages:
        ds = _build(root, split='train', exclude=dict(file=str(path), source='tyop'))
    assert len(ds.image_paths) == 4 and ds.metainfo['exclusions']['images'] == 0
    assert any("names no image of source 'tyop'" in m and 'its sources: toy' in m for m in messages)


def _checked(*groups):
    """A check record as the leakage check writes it: the groups it read."""
    return dict(groups=[dict(source=s, split=p, held_out=p != 'train', images=1) for s, p in groups])


def test_a_list_whose_check_read_the_split_may_exclude_nothing(root):
    path = root / 'clean.json'
    write_exclusion_list(str(path), [], check=_checked(('toy', 'train'), ('toy', 'test')))
    with captured_log(logging.WARNING) as warnings:
        ds = _build(root, split='train', exclude=dict(file=str(path), source='toy'))
    assert len(ds.image_paths) == 4 and ds.metainfo['exclusions']['images'] == 0
    assert not warnings


def test_a_list_whose_check_did_not_read_the_split_is_refused(root):
    path = root / 'other.json'
    write_exclusion_list(str(path), [], check=_checked(('ucm', 'train'), ('ucm', 'test')))
    with pytest.raises(AnnotationError, match=r'did not read toy/train \(it read ucm/test, ucm/train\)'):
        _build(root, split='train', exclude=dict(file=str(path), source='toy'))


def test_sha256_mismatch_names_the_list_the_entry_and_the_file(root):
    path = _list(root, [_entry(root, 'a/1.png', sha256='0' * 64)])
    with pytest.raises(AnnotationError) as err:
        _build(root, split='train', exclude=dict(file=str(path), source='toy'))
    message = str(err.value)
    assert str(path) in message and 'entry toy/train/a/1.png' in message
    assert str(root / 'images' / 'a' / '1.png') in message and 'another copy of the images' in message


def test_an_entry_the_split_does_not_hold_is_an_error(root):
    # b/4.png is a test image: an entry for it under train belongs to another annotation file
    path = _list(root, [_entry(root, 'a/1.png'), _entry(root, 'b/4.png')])
    with pytest.raises(AnnotationError, match=r"1 entries of source 'toy', split 'train' name images that .*ann\.json "
                       r"\[train\] does not hold, e.g. 'b/4.png'"):  # fmt: skip
        _build(root, split='train', exclude=dict(file=str(path), source='toy'))


def test_an_entry_held_out_by_holdout_is_an_error(root):
    holdout = dict(split='train', num_images=1, seed=0)
    held = _names(_build(root, split='holdout', holdout=holdout, test_mode=True))
    path = _list(root, [_entry(root, held[0])])
    with pytest.raises(AnnotationError, match='another annotation file, split or holdout'):
        _build(root, split='train', holdout=holdout, exclude=dict(file=str(path), source='toy'))


def test_a_missing_excluded_file_is_named(root):
    path = _list(root, [_entry(root, 'a/1.png')])
    (root / 'images' / 'a' / '1.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'entry toy/train/a/1.png: image not found: .*a/1\.png'):
        _build(root, split='train', check_images=False, exclude=dict(file=str(path), source='toy'))


def test_a_missing_list_is_named_with_the_tool_that_writes_it(root):
    with pytest.raises(
        FileNotFoundError, match=r'exclusion list .*nowhere\.json not found: write it with .*check_leaks'
    ):
        _build(root, split='train', exclude=dict(file=str(root / 'nowhere.json'), source='toy'))


@pytest.mark.parametrize(
    'exclude, message',
    [
        ('exclusions.json', 'must be dict'),
        (dict(file='x.json'), r"missing \['source'\]"),
        (dict(file='x.json', source='toy', split='train'), r"unknown \['split'\]"),
        (dict(file='', source='toy'), "exclude\\['file'\\] must be a non-empty string"),
    ],
)
def test_exclude_argument_errors_name_the_key(root, exclude, message):
    with pytest.raises(ValueError, match=message):
        _build(root, split='train', exclude=exclude)
