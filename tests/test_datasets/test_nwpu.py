"""NWPU-Captions (``dataset_nwpu.json``): reading, detection, ground truth, errors, config."""

import json

import numpy as np
import pytest
from conftest import REPO
from mmengine.config import Config
from PIL import Image

from rsretrieval.datasets import NWPU_CAPTION_KEYS, AnnotationError, detect_format, load_annotations
from rsretrieval.registry import DATASETS

CLASSES = ('airplane', 'bridge', 'church')
# per class, as the release's 70/10/20 split on a small scale
SPLITS = ('train', 'train', 'train', 'val', 'test')
ANN = 'annotations/dataset_nwpu.json'


def _entries(with_images_in=None):
    """The release's layout: a list of entries per class, five captions each."""
    data, imgid, sentid = {}, 0, 0
    for c, cls in enumerate(CLASSES):
        data[cls] = []
        for i, split in enumerate(SPLITS):
            name = f'{cls}_{i + 1:03d}.jpg'
            entry = {'filename': name, 'split': split, 'imgid': imgid}
            for k, key in enumerate(NWPU_CAPTION_KEYS):
                entry[key] = f'There is a {cls} number {i}, caption {k}.'
                entry['sentids' if k == 0 else f'sentids_{k}'] = sentid
                sentid += 1
            data[cls].append(entry)
            imgid += 1
            if with_images_in is not None:
                folder = with_images_in / cls
                folder.mkdir(parents=True, exist_ok=True)
                # a tiny PNG behind a .jpg name: the loader goes by content
                Image.fromarray(np.full((8, 8, 3), 20 * c + i, np.uint8)).save(folder / name, format='PNG')
    return data


def _write(root, data):
    path = root / ANN
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope='module')
def nwpu_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('nwpu') / 'nwpu_captions'
    _write(root, _entries(with_images_in=root / 'NWPU_images'))
    return root


def _build(root, **kwargs):
    cfg = dict(type='RSCaptionDataset', data_root=str(root), ann_file=ANN, data_prefix=dict(img_path='NWPU_images'))
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_auto_detected(nwpu_root):
    assert detect_format(nwpu_root / ANN) == 'nwpu'
    auto = load_annotations(nwpu_root / ANN, 'val')
    assert auto == load_annotations(nwpu_root / ANN, 'val', 'nwpu')
    assert [r.filename for r in auto] == ['airplane/airplane_004.jpg', 'bridge/bridge_004.jpg', 'church/church_004.jpg']
    assert auto[1].sources[2] == f'{nwpu_root / ANN}[bridge][3][raw_2]'


@pytest.mark.parametrize('split, n_images', [('train', 9), ('val', 3), ('test', 3)])
def test_counts_per_split(nwpu_root, split, n_images):
    ds = _build(nwpu_root, split=split, test_mode=True)
    assert ds.metainfo['num_images'] == len(ds) == n_images
    assert ds.metainfo['num_captions'] == len(ds.captions) == 5 * n_images
    train = _build(nwpu_root, split=split, check_images=False)  # one item per (image, caption) pair
    assert len(train) == 5 * n_images


def test_ground_truth_five_captions_per_image(nwpu_root):
    ds = _build(nwpu_root, split='test', test_mode=True)
    assert ds.img2txt == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]
    assert ds.txt2img == [0] * 5 + [1] * 5 + [2] * 5
    assert ds.captions[5:10] == [f'there is a bridge number 4 caption {k}' for k in range(5)]  # raw, raw_1..raw_4
    assert ds.image_paths[2].endswith('nwpu_captions/NWPU_images/church/church_005.jpg')
    assert ds[1]['img_path'] == ds.image_paths[1] and ds[1]['image_id'] == 1


def test_more_than_five_captions_are_read(tmp_path):
    data = _entries()
    data['airplane'][4]['raw_5'] = 'a sixth caption'
    recs = load_annotations(_write(tmp_path, data), 'test')
    assert len(recs[0].captions) == 6 and recs[0].captions[-1] == 'a sixth caption'
    assert [len(r.captions) for r in recs[1:]] == [5, 5]


def _break(data, change):
    change(data)
    return data


def _pop(key):
    return lambda d: d['bridge'][2].pop(key)


def _set(key, value):
    return lambda d: d['bridge'][2].__setitem__(key, value)


BAD_ENTRY_IDS = ['no-filename', 'empty-filename', 'no-raw_3', 'no-raw', 'raw_1-null', 'bad-split', 'no-split']
BAD_ENTRY_IDS += ['class-not-a-list', 'entry-not-an-object']


@pytest.mark.parametrize(
    'change, message',
    [
        (_pop('filename'), r'\[bridge\]\[2\]: missing key "filename" \(class \'bridge\', entry 2\)'),
        (_set('filename', ''), r'\[bridge\]\[2\]: bad filename \'\''),
        (_pop('raw_3'), r"\[bridge\]\[2\] \(bridge_003\.jpg\): missing caption field 'raw_3'"),
        (_pop('raw'), r"\[bridge\]\[2\] \(bridge_003\.jpg\): missing caption field 'raw'"),
        (_set('raw_1', None), r"\[bridge\]\[2\] \(bridge_003\.jpg\): caption field 'raw_1' must be a string"),
        (_set('split', 'restval'), r"\[bridge\]\[2\] \(bridge_003\.jpg\): unknown split value 'restval'"),
        (_pop('split'), r'\[bridge\]\[2\] \(bridge_003\.jpg\): missing key "split"'),
        (lambda d: d.__setitem__('bridge', {'x': 1}), r"\[bridge\]: class 'bridge' must hold a list .* got dict"),
        (lambda d: d['bridge'].__setitem__(2, 'bridge_003.jpg'), r'\[bridge\]\[2\]: expected an object, got str'),
    ],
    ids=BAD_ENTRY_IDS,
)
def test_bad_entries_fail_at_build_naming_class_and_entry(tmp_path, change, message):
    # an entry of any split is checked, whichever split is built (here the test split; the entry is train)
    path = _write(tmp_path, _break(_entries(), change))
    with pytest.raises(AnnotationError, match=message) as err:
        _build(tmp_path, split='test', test_mode=True)
    assert str(path) in str(err.value)


def test_empty_caption_named(tmp_path):
    data = _entries(with_images_in=tmp_path / 'NWPU_images')
    data['church'][4]['raw_4'] = ' . '
    _write(tmp_path, data)
    message = r"\[church\]\[4\]\[raw_4\]: empty caption ' \. ' for image 'church/church_005"
    with pytest.raises(AnnotationError, match=message):
        _build(tmp_path, split='test', test_mode=True)
    ds = _build(tmp_path, split='test', test_mode=True, empty_captions='drop')
    assert [len(t) for t in ds.img2txt] == [5, 5, 4]


def test_unknown_split_lists_the_file_splits(nwpu_root):
    message = r"unknown split 'restval'; the file has splits \['test', 'train', 'val'\]"
    with pytest.raises(AnnotationError, match=message):
        _build(nwpu_root, split='restval')


def test_missing_image_named(tmp_path):
    _write(tmp_path, _entries(with_images_in=tmp_path / 'NWPU_images'))
    (tmp_path / 'NWPU_images' / 'bridge' / 'bridge_005.jpg').unlink()
    with pytest.raises(FileNotFoundError, match=r'NWPU_images/bridge/bridge_005\.jpg \(listed at .*\[bridge\]\[4\]'):
        _build(tmp_path, split='test')


def test_not_an_object(tmp_path):
    path = _write(tmp_path, [])
    with pytest.raises(AnnotationError, match='NWPU-Captions format needs a top-level JSON object'):
        load_annotations(path, 'train', 'nwpu')
    path.write_text(json.dumps({'airplane': [{'caption': 'x'}]}))
    with pytest.raises(AnnotationError, match='cannot detect the annotation format.*NWPU-Captions'):
        detect_format(path)


def test_config_reads_the_release_layout(nwpu_root):
    cfg = Config.fromfile(str(REPO / 'configs' / 'cmpagl_nwpu.py'))
    counts = {}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = dict(cfg[loader].dataset.to_dict(), data_root=str(nwpu_root), pipeline=[])
        ds = DATASETS.build(dataset)
        counts[ds.split] = ds.metainfo['num_images']
    assert counts == dict(train=9, val=3, test=3)  # selection on the release's own val split
