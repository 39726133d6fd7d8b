"""``subset=dict(num_images=N, seed=S)``: images spread over a split, and the warning on a narrow ``indices``."""

import argparse
import json
import logging
import random
import re
import shlex
from collections import Counter

import numpy as np
import pytest
from conftest import REPO, SHARED_DATA
from helpers import captured_log
from PIL import Image

from rsretrieval.datasets.subsets import (
    check_subset,
    image_classes,
    narrow_subset_reason,
    spread_subset,
)
from rsretrieval.registry import DATASETS
from rsretrieval.utils import apply_cfg_options, read_config
from rsretrieval.utils.command_args import add_common_args

CLASSES = ('beach', 'forest', 'harbor', 'parking')  # 5 images each, listed class by class


def _write(root, named=True, per_class=5, split='train'):
    """A class-sorted Karpathy split: ``<class>_<n>.png`` (or numbered) images, 2 or 3 captions each."""
    (root / 'images').mkdir(parents=True)
    images = []
    for c, cls in enumerate(CLASSES):
        for k in range(per_class):
            n = c * per_class + k
            name = f'{cls}_{n}.png' if named else f'{n + 1}.png'
            Image.fromarray(np.full((8, 8, 3), n * 10, np.uint8)).save(root / 'images' / name)
            sents = [{'raw': f'{cls} scene {n} caption {j}'} for j in range(2 + n % 2)]
            images.append({'filename': name, 'split': split, 'sentences': sents})
    (root / 'ann.json').write_text(json.dumps({'images': images}))


def _build(root, split='train', **kwargs):
    cfg = dict(type='RSCaptionDataset', data_root=str(root), ann_file='ann.json', data_prefix=dict(img_path='images'))
    return DATASETS.build(dict(cfg, split=split, **kwargs))


def _names(ds):
    return [p.rsplit('/', 1)[1] for p in ds.image_paths]


# ------------------------------------------------------------------ classes of images
def test_classes_from_folders_stems_or_unknown():
    nwpu = ['airplane/airplane_001.jpg', 'airplane/airplane_002.jpg', 'bridge/bridge_001.jpg', 'bridge/x.jpg']
    assert image_classes(nwpu) == ['airplane', 'airplane', 'bridge', 'bridge']
    rsitmd = ['baseballfield_452.tif', 'baseballfield_453.tif', 'boat-459.tif', 'boat460.tif']
    assert image_classes(rsitmd) == ['baseballfield', 'baseballfield', 'boat', 'boat']
    assert image_classes(['1.tif', '2.tif', '3.tif', '4.tif']) == [None] * 4  # UCM, Sydney


def test_names_that_say_nothing_of_a_class_are_unknown():
    rsicd_like = ['airport_1.jpg', 'airport_2.jpg', 'beach_3.jpg', 'beach_4.jpg', '00005.jpg']
    assert image_classes(rsicd_like) == ['airport', 'airport', 'beach', 'beach', None]
    assert image_classes([f'img_{i}.jpg' for i in range(6)]) == [None] * 6  # one prefix for all
    assert image_classes([f'images/{i}.jpg' for i in range(6)]) == [None] * 6  # one folder for all
    assert image_classes([f'IMG_2020010{i}_1.jpg' for i in range(6)]) == [None] * 6  # a name per image


# ------------------------------------------------------------------ the spread draw
def test_spread_is_seeded_and_ignores_global_random_state():
    classes = ['a'] * 30 + ['b'] * 30 + [None] * 40
    np.random.seed(1)
    random.seed(1)
    first = spread_subset(classes, 25, seed=3)
    np.random.seed(2)
    random.seed(2)
    np.random.rand(7)  # another rank, another history of the global generators
    assert spread_subset(classes, 25, seed=3) == first
    assert spread_subset(classes, 25, seed=4) != first
    assert len(first) == len(set(first)) == 25 and first == sorted(first)


def test_stratified_in_proportion_with_every_class_present():
    classes = ['a'] * 60 + ['b'] * 30 + ['c'] * 9 + ['d'] * 1
    picked = spread_subset(classes, 10, seed=0)
    assert Counter(classes[i] for i in picked) == {'a': 5, 'b': 3, 'c': 1, 'd': 1}


def test_fewer_images_than_classes_gives_one_each_to_some():
    classes = [c for c in 'abcdef' for _ in range(4)]
    picked = spread_subset(classes, 3, seed=0)
    assert sorted(Counter(classes[i] for i in picked).values()) == [1, 1, 1]


def test_unknown_classes_spread_over_a_class_sorted_order():
    picked = spread_subset([None] * 2100, 210, seed=0)  # UCM-like: 21 runs of 100
    assert Counter(i // 100 for i in picked) == dict.fromkeys(range(21), 10)
    assert spread_subset([None] * 5, 9, seed=0) == [0, 1, 2, 3, 4]  # more than there are: all


# ------------------------------------------------------------------ what is narrow
def test_narrow_where_classes_are_known():
    classes = [c for c in 'abcdefgh' for _ in range(10)]
    assert narrow_subset_reason(classes, range(30)) == 'covers 3 of the 8 classes'
    assert narrow_subset_reason(classes, range(40)) is None  # half of them
    assert narrow_subset_reason(classes, range(0, 80, 10)) is None


def test_narrow_where_classes_are_unknown():
    classes = [None] * 100
    assert 'first 49 of the 100 images' in narrow_subset_reason(classes, range(49))
    assert 'last 10 of the 100 images' in narrow_subset_reason(classes, range(90, 100))
    assert narrow_subset_reason(classes, range(50)) is None  # half the images
    assert narrow_subset_reason(classes, range(0, 40, 2)) is None  # not one run


@pytest.mark.parametrize(
    'subset, message',
    [
        (dict(seed=0), 'num_images'),
        (dict(num_images=3, seed=0, shuffle=True), 'num_images'),
        (dict(num_images=0), 'positive int'),
        (dict(num_images=True), 'positive int'),
        (dict(num_images='3'), 'positive int'),
        (dict(num_images=3, seed=-1), 'non-negative int'),
    ],
)
def test_bad_subset_is_named(subset, message):
    with pytest.raises(ValueError, match=message):
        check_subset(subset)


def test_seed_defaults_to_zero():
    assert check_subset(dict(num_images=4)) == dict(num_images=4, seed=0)


# ------------------------------------------------------------------ on the dataset
def _consistent(ds):
    assert sorted(t for caps in ds.img2txt for t in caps) == list(range(len(ds.captions)))
    for image, caps in enumerate(ds.img2txt):
        assert all(ds.txt2img[t] == image for t in caps)


def test_both_modes_keep_the_same_images_with_all_their_captions(tmp_path):
    _write(tmp_path)
    test = _build(tmp_path, test_mode=True, subset=dict(num_images=8, seed=0))
    train = _build(tmp_path, subset=dict(num_images=8, seed=0))
    assert _names(test) == _names(train) and len(test) == 8
    assert Counter(name.split('_')[0] for name in _names(test)) == dict.fromkeys(CLASSES, 2)
    # every caption of a kept image: 2 for an even image number, 3 for an odd one
    expected = sum(2 + int(name.split('_')[1].split('.')[0]) % 2 for name in _names(train))
    assert len(train) == len(train.captions) == expected
    assert [train.get_data_info(i)['caption_id'] for i in range(len(train))] == list(range(expected))
    for ds in (test, train):
        _consistent(ds)
        assert ds.metainfo['subset'] == dict(num_images=8, seed=0) and ds.metainfo['subset_of'] == 20


def test_dataset_subset_is_deterministic_for_a_seed(tmp_path):
    _write(tmp_path, named=False)
    names = [_names(_build(tmp_path, test_mode=True, subset=dict(num_images=4, seed=s))) for s in (0, 0, 1)]
    assert names[0] == names[1] != names[2]
    assert {(int(n.split('.')[0]) - 1) // 5 for n in names[0]} == {0, 1, 2, 3}  # one per run of 5


def test_first_n_on_a_class_sorted_split_warns_once(tmp_path):
    _write(tmp_path)
    with captured_log(logging.WARNING) as messages:
        ds = _build(tmp_path, indices=12)  # 12 pairs: the first 5 images, all of class beach
    assert len(ds) == 12
    assert len(messages) == 1
    assert 'ann.json [train]: indices=12 covers 1 of the 4 classes' in messages[0]
    assert 'subset=dict(num_images=5, seed=0)' in messages[0] and '\n' not in messages[0]


def test_first_n_of_numbered_images_warns_in_test_mode(tmp_path):
    _write(tmp_path, named=False)
    with captured_log(logging.WARNING) as messages:
        _build(tmp_path, test_mode=True, indices=-4)
    assert len(messages) == 1 and 'indices=-4 keeps only the last 4 of the 20 images' in messages[0]


@pytest.mark.parametrize(
    'kwargs',
    [dict(subset=dict(num_images=4, seed=0)), dict(indices=list(range(0, 20, 5))), dict(indices=10)],
    ids=['subset', 'spread-list', 'half'],
)
def test_spread_selections_do_not_warn(tmp_path, kwargs):
    _write(tmp_path, named=False)
    with captured_log(logging.WARNING) as messages:
        _build(tmp_path, test_mode=True, **kwargs)
    assert messages == []


def test_indices_and_subset_together_is_an_error(tmp_path):
    _write(tmp_path)
    with pytest.raises(ValueError, match='give indices or subset, not both'):
        _build(tmp_path, indices=4, subset=dict(num_images=4))


def test_only_the_subset_images_are_checked(tmp_path):
    _write(tmp_path, named=False)
    picked = set(_names(_build(tmp_path, test_mode=True, subset=dict(num_images=4, seed=0))))
    outside = next(f'{n}.png' for n in range(1, 21) if f'{n}.png' not in picked)
    (tmp_path / 'images' / outside).write_bytes(b'not an image')
    assert set(_names(_build(tmp_path, test_mode=True, subset=dict(num_images=4, seed=0)))) == picked
    with pytest.raises(OSError, match=re.escape(outside)):
        _build(tmp_path, test_mode=True)


# ------------------------------------------------------------------ the documented command line
def _documented_cfg_options() -> list[str]:
    """The ``--cfg-options`` arguments of the command in docs/datasets.md's subsets section."""
    section = (REPO / 'docs' / 'datasets.md').read_text().split('## Subsets', 1)[1].split('\n## ', 1)[0]
    command = re.search(r'```bash\n(.*?)```', section, re.S).group(1).replace('\\\n', ' ')
    args = shlex.split(command)
    assert args[:3] == ['python', 'tools/train.py', 'configs/cmpagl_ucm.py']
    return args[args.index('--cfg-options') :]


def _write_ucm_layout(root, splits):
    """``annotations/dataset_ucm.json`` and ``images/N.png``, numbered through the splits in turn."""
    (root / 'images').mkdir(parents=True)
    (root / 'annotations').mkdir()
    images = []
    for split, count in splits:
        for _ in range(count):
            name = f'{len(images) + 1}.png'
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / 'images' / name)
            images.append({'filename': name, 'split': split, 'sentences': [{'raw': f'scene {name}'}]})
    (root / 'annotations' / 'dataset_ucm.json').write_text(json.dumps({'images': images}))


def test_documented_command_line_builds_spread_subsets(tmp_path):
    _write_ucm_layout(tmp_path, [('train', 400), ('val', 100)])
    parser = argparse.ArgumentParser()
    add_common_args(parser)
    options = [o.replace('/path/to/ucm_captions', str(tmp_path)) for o in _documented_cfg_options()]
    cfg = apply_cfg_options(
        read_config(str(REPO / 'configs' / 'cmpagl_ucm.py')), parser.parse_args(options).cfg_options
    )
    assert cfg.train_dataloader.dataset.subset == dict(num_images=320)
    for loader, images in (('train_dataloader', 320), ('val_dataloader', 64)):
        dataset = DATASETS.build(dict(cfg[loader].dataset, pipeline=[], check_images='header'))
        assert len(dataset.image_paths) == images and dataset.metainfo['subset']['seed'] == 0


# ------------------------------------------------------------------ on UCM-Captions
UCM = SHARED_DATA / 'ucm_captions'


def test_ucm_first_n_warns_and_subset_covers_every_class():
    if not UCM.is_dir():
        pytest.skip(f'{UCM} is absent')
    cfg = dict(
        type='RSCaptionDataset',
        data_root=str(UCM),
        ann_file='annotations/dataset_ucm.json',
        data_prefix=dict(img_path='images'),
        split='train',
        check_images=False,
    )

    def ucm_classes(ds):  # N.jpg, N = 1..2100: 100 images per class, in class order
        return Counter((int(p.rsplit('/', 1)[1].split('.')[0]) - 1) // 100 for p in ds.image_paths)

    with captured_log(logging.WARNING) as messages:
        first = DATASETS.build(dict(cfg, indices=1600))
    assert len(ucm_classes(first)) == 4
    assert len(messages) == 1 and 'dataset_ucm.json [train]: indices=1600 keeps only the first 320' in messages[0]
    with captured_log(logging.WARNING) as messages:
        spread = DATASETS.build(dict(cfg, subset=dict(num_images=320, seed=0)))
    assert messages == [] and len(spread.image_paths) == 320
    assert len(ucm_classes(spread)) == 21 and min(ucm_classes(spread).values()) >= 14
