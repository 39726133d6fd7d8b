import json

import numpy as np
import pytest
from conftest import SHARED_DATA, requires_shared
from helpers import captured_log
from PIL import Image

from rsretrieval.datasets import AnnotationError, make_demo_dataset
from rsretrieval.registry import DATASETS


def _write_dataset(root, n_images=3, fmt='PNG'):
    (root / 'images').mkdir(parents=True)
    images = []
    for i in range(n_images):
        name = f'{i}.{fmt.lower()}'
        Image.fromarray(np.full((16, 16, 3), i * 40, np.uint8)).save(root / 'images' / name, format=fmt)
        sents = [{'raw': f'Image {i}, caption {j}!'} for j in range(2 + i % 2)]
        images.append({'filename': name, 'split': 'test', 'sentences': sents})
    (root / 'ann.json').write_text(json.dumps({'images': images}))


def _build(root, **kwargs):
    cfg = dict(type='RSCaptionDataset', data_root=str(root), ann_file='ann.json', data_prefix=dict(img_path='images'))
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_test_mode_ground_truth(tmp_path):
    _write_dataset(tmp_path)
    ds = _build(tmp_path, split='test', test_mode=True)
    assert len(ds) == 3
    assert ds.img2txt == [[0, 1], [2, 3, 4], [5, 6]]
    assert ds.txt2img == [0, 0, 1, 1, 1, 2, 2]
    assert ds.captions[0] == 'image 0 caption 0'
    assert ds.image_paths[1].endswith('images/1.png')
    assert ds[1]['image_id'] == 1 and ds[1]['sample_idx'] == 1


def test_train_mode_one_item_per_pair(tmp_path):
    _write_dataset(tmp_path)
    ds = _build(tmp_path, split='test', pipeline=[dict(type='LoadImage'), dict(type='PackRetrievalInputs')])
    assert len(ds) == 7
    item = ds[3]
    assert item['inputs'].shape == (3, 16, 16)
    assert item['data_samples'] == dict(sample_idx=3, image_id=1, caption_id=3, caption='image 1 caption 1')


def test_split_placeholder_in_ann_file(tmp_path):
    """One ALBEF file per split: ``{split}`` in ann_file selects it."""
    (tmp_path / 'images').mkdir()
    for split, names in (('train', ['a', 'b']), ('test', ['c'])):
        for name in names:
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'images' / f'{name}.png')
        entries = [{'image': f'{n}.png', 'caption': [f'{split} {n} one', f'{split} {n} two']} for n in names]
        (tmp_path / f'ds_{split}.json').write_text(json.dumps(entries))
    train = _build(tmp_path, ann_file='ds_{split}.json', split='train', test_mode=True)
    test = _build(tmp_path, ann_file='ds_{split}.json', split='test', test_mode=True)
    assert [p.rsplit('/', 1)[1] for p in train.image_paths] == ['a.png', 'b.png']
    assert test.captions == ['test c one', 'test c two']
    with pytest.raises(FileNotFoundError, match='ds_val.json'):
        _build(tmp_path, ann_file='ds_{split}.json', split='val', test_mode=True)


@pytest.mark.parametrize('fmt', ['JPEG', 'TIFF'])
def test_image_formats(tmp_path, fmt):
    _write_dataset(tmp_path, fmt=fmt)
    ds = _build(tmp_path, split='test', test_mode=True, pipeline=[dict(type='LoadImage')])
    assert ds[2]['img'].shape == (16, 16, 3) and ds[2]['img'].dtype == np.uint8


def test_missing_image_named(tmp_path):
    _write_dataset(tmp_path)
    (tmp_path / 'images' / '1.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'images/1\.png \(listed at .*ann\.json\[images\]\[1\]'):
        _build(tmp_path, split='test')


def test_unreadable_image_named(tmp_path):
    _write_dataset(tmp_path)
    (tmp_path / 'images' / '2.png').write_bytes(b'not an image at all')
    with pytest.raises(OSError, match=r'Unreadable image: .*images/2\.png'):
        _build(tmp_path, split='test')


def test_truncated_image_fails_at_build_not_mid_epoch(tmp_path):
    _write_dataset(tmp_path, fmt='JPEG')
    image = tmp_path / 'images' / '1.jpeg'
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(image)
    data = image.read_bytes()
    image.write_bytes(data[: len(data) * 2 // 3])  # a download cut short
    header_only = _build(tmp_path, split='test', test_mode=True, check_images='header')
    assert len(header_only) == 3  # the header is intact: only a full decode finds it
    with pytest.raises(OSError, match=r'Unreadable image: .*images/1\.jpeg \(listed at .*\[images\]\[1\]'):
        _build(tmp_path, split='test', test_mode=True)
    with pytest.raises(ValueError, match="check_images must be 'full', 'header' or False"):
        _build(tmp_path, split='test', check_images='fast')


def test_empty_caption_named(tmp_path):
    _write_dataset(tmp_path)
    data = json.loads((tmp_path / 'ann.json').read_text())
    data['images'][0]['sentences'][1]['raw'] = ' ?! '
    (tmp_path / 'ann.json').write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r'\[images\]\[0\]\[sentences\]\[1\]: empty caption'):
        _build(tmp_path, split='test')
    ds = _build(tmp_path, split='test', test_mode=True, empty_captions='drop')
    assert ds.img2txt == [[0], [1, 2, 3], [4, 5]] and len(ds.captions) == 6
    data['images'][0]['sentences'][0]['raw'] = '...'
    (tmp_path / 'ann.json').write_text(json.dumps(data))
    with captured_log() as messages:
        ds = _build(tmp_path, split='test', test_mode=True, empty_captions='drop')  # image 0 has no caption left
    assert [p.rsplit('/', 1)[1] for p in ds.image_paths] == ['1.png', '2.png']
    assert ds.img2txt == [[0, 1, 2], [3, 4]] and ds.txt2img == [0, 0, 0, 1, 1]
    assert ds.metainfo['num_images'] == 2
    assert any('images had no caption left and were dropped: 0.png' in m for m in messages)


def test_unknown_split_at_build(tmp_path):
    _write_dataset(tmp_path)
    with pytest.raises(AnnotationError, match="unknown split 'train'"):
        _build(tmp_path, split='train')


def test_demo_dataset_is_deterministic(tmp_path):
    a = make_demo_dataset(tmp_path / 'a', 4, 1, 1, image_size=32, seed=3)
    b = make_demo_dataset(tmp_path / 'b', 4, 1, 1, image_size=32, seed=3)
    assert (a / 'dataset_demo.json').read_text() == (b / 'dataset_demo.json').read_text()
    for name in ('00000.png', '00005.png'):
        assert (a / 'images' / name).read_bytes() == (b / 'images' / name).read_bytes()
    data = json.loads((a / 'dataset_demo.json').read_text())
    assert [im['split'] for im in data['images']] == ['train'] * 4 + ['val', 'test']
    assert all(len({s['raw'] for s in im['sentences']}) == 5 for im in data['images'])


def test_demo_dataset_generated_on_build(tmp_path):
    root = tmp_path / 'made_here'
    ds = DATASETS.build(
        dict(
            type='DemoSceneDataset',
            data_root=str(root),
            generator=dict(num_train=3, num_val=2, num_test=2, image_size=32),
            split='val',
            test_mode=True,
        )
    )
    assert (root / 'dataset_demo.json').is_file()
    assert len(ds) == 2 and len(ds.captions) == 10


@requires_shared
def test_real_ucm_images(tmp_path):
    root = SHARED_DATA / 'ucm_captions'
    ds = DATASETS.build(
        dict(
            type='RSCaptionDataset',
            data_root=str(root),
            ann_file='annotations/dataset_ucm.json',
            data_prefix=dict(img_path='images'),
            split='test',
            test_mode=True,
        )
    )
    assert len(ds) == 210 and len(ds.captions) == 1050
    from rsretrieval.datasets.transforms import read_rgb

    tif = read_rgb(str(root / 'tif_samples' / '1.tif'))
    assert tif.ndim == 3 and tif.shape[2] == 3


# ------------------------------------------------------------------- held-out validation
def _write_train_split(root, n_images=10):
    (root / 'images').mkdir(parents=True)
    images = []
    for i in range(n_images):
        name = f'img{i:02d}.png'
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(root / 'images' / name)
        images.append(
            {'filename': name, 'split': 'train', 'sentences': [{'raw': f'scene {i} a'}, {'raw': f'scene {i} b'}]}
        )
    images.append({'filename': 'img00.png', 'split': 'test', 'sentences': [{'raw': 'a test scene'}]})
    (root / 'ann.json').write_text(json.dumps({'images': images}))
    return images


def test_holdout_splits_train_into_two_disjoint_fixed_parts(tmp_path):
    _write_train_split(tmp_path)
    holdout = dict(split='train', num_images=3, seed=0)
    val = _build(tmp_path, split='holdout', holdout=holdout, test_mode=True)
    train = _build(tmp_path, split='train', holdout=holdout)
    held = {p.rsplit('/', 1)[1] for p in val.image_paths}
    trained = {p.rsplit('/', 1)[1] for p in train.image_paths}
    assert len(held) == 3 and len(trained) == 7 and not held & trained
    assert len(train) == 14  # the held-out images' captions left training
    assert set(train.captions).isdisjoint(val.captions)
    assert val.img2txt == [[0, 1], [2, 3], [4, 5]] and val.metainfo['holdout'] == holdout
    # fixed by the seed; another seed draws other images
    assert held == {p.rsplit('/', 1)[1] for p in _build(tmp_path, split='holdout', holdout=holdout).image_paths}
    other = _build(tmp_path, split='holdout', holdout=dict(holdout, seed=1), test_mode=True)
    assert {p.rsplit('/', 1)[1] for p in other.image_paths} != held
    # other splits are untouched
    assert len(_build(tmp_path, split='test', holdout=holdout, test_mode=True)) == 1


def test_holdout_does_not_depend_on_annotation_order(tmp_path):
    images = _write_train_split(tmp_path)
    holdout = dict(split='train', num_images=4, seed=3)
    first = _build(tmp_path, split='holdout', holdout=holdout, test_mode=True).image_paths
    (tmp_path / 'ann.json').write_text(json.dumps({'images': images[::-1]}))
    second = _build(tmp_path, split='holdout', holdout=holdout, test_mode=True).image_paths
    assert sorted(first) == sorted(second)


@pytest.mark.parametrize(
    'holdout, message',
    [
        (None, "split='holdout' needs holdout"),
        (dict(split='train', num_images=3), r"missing \['seed'\]"),
        (dict(split='train', num_images=0, seed=0), 'positive int'),
        (dict(split='train', num_images=10, seed=0), 'would leave none'),
    ],
)
def test_holdout_errors_name_the_problem(tmp_path, holdout, message):
    _write_train_split(tmp_path)
    with pytest.raises(ValueError, match=message):
        _build(tmp_path, split='holdout', holdout=holdout, test_mode=True)
