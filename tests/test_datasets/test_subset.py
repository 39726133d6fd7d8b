"""mmengine's ``indices`` on RSCaptionDataset: one consistent subset of images (test) or pairs (train)."""

import json

import numpy as np
import pytest
from helpers import tiny_runner_cfg
from mmengine.runner import Runner
from PIL import Image

from rsretrieval.registry import DATASETS


def _write(root, n_images=6, bad=()):
    (root / 'images').mkdir(parents=True)
    images = []
    for i in range(n_images):
        name = f'{i}.png'
        if i in bad:
            (root / 'images' / name).write_bytes(b'not an image')
        else:
            Image.fromarray(np.full((8, 8, 3), i * 30, np.uint8)).save(root / 'images' / name)
        sents = [{'raw': f'scene {i} caption {j}'} for j in range(2 + i % 2)]  # 2 or 3 captions
        images.append({'filename': name, 'split': 'test', 'sentences': sents})
    (root / 'ann.json').write_text(json.dumps({'images': images}))


def _build(root, **kwargs):
    cfg = dict(type='RSCaptionDataset', data_root=str(root), ann_file='ann.json', data_prefix=dict(img_path='images'))
    return DATASETS.build(dict(cfg, split='test', **kwargs))


def _consistent(ds):
    assert len(ds.image_paths) == len(ds.img2txt) and len(ds) == len(ds.image_paths if ds.test_mode else ds.captions)
    assert sorted(t for caps in ds.img2txt for t in caps) == list(range(len(ds.captions)))
    for image, caps in enumerate(ds.img2txt):
        assert all(ds.txt2img[t] == image for t in caps)


@pytest.mark.parametrize(
    'indices, names',
    [(2, ['0.png', '1.png']), (-2, ['4.png', '5.png']), ([4, 1], ['4.png', '1.png'])],
    ids=['first', 'last', 'list'],
)
def test_test_mode_selects_images_and_their_ground_truth(tmp_path, indices, names):
    _write(tmp_path)
    ds = _build(tmp_path, test_mode=True, indices=indices)
    assert [p.rsplit('/', 1)[1] for p in ds.image_paths] == names
    _consistent(ds)
    assert ds.captions[ds.img2txt[0][0]].startswith(f'scene {names[0][0]} ')
    assert [ds[i]['image_id'] for i in range(len(ds))] == list(range(len(names)))
    assert ds.metainfo['num_images'] == len(names) and ds.metainfo['subset_of'] == 6


def test_train_mode_selects_pairs(tmp_path):
    _write(tmp_path)
    ds = _build(tmp_path, indices=4)  # image 0 has 2 captions, image 1 has 3: pairs 0-1 and 2-3
    assert len(ds) == 4
    items = [ds.get_data_info(i) for i in range(4)]
    assert [it['image_id'] for it in items] == [0, 0, 1, 1]
    assert [it['caption'] for it in items][2:] == ['scene 1 caption 0', 'scene 1 caption 1']
    _consistent(ds)


def test_only_the_selected_images_are_checked(tmp_path):
    _write(tmp_path, bad=(5,))
    with pytest.raises(OSError, match='5.png'):
        _build(tmp_path, test_mode=True)
    assert len(_build(tmp_path, test_mode=True, indices=3)) == 3


@pytest.mark.parametrize(
    'indices, message',
    [([0, 9], r'out of range for 6 images'), ([1, 1], 'repeat'), (0, 'selects none'), ('3', 'int or a sequence')],
)
def test_bad_indices_are_named(tmp_path, indices, message):
    _write(tmp_path)
    with pytest.raises(ValueError, match=message):
        _build(tmp_path, test_mode=True, indices=indices)


def test_training_with_subsets_then_validating_on_one(tmp_path, demo_root):
    # the user's case: indices on the train, val and test loaders of a config, one epoch
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root), max_epochs=1)
    cfg['train_dataloader']['dataset']['indices'] = 16
    cfg['val_dataloader']['dataset']['indices'] = 3
    cfg['test_dataloader']['dataset']['indices'] = [4, 0, 2]
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.val_loop.dataloader.dataset.metainfo['num_images'] == 3
    metrics = runner.test()
    assert 0 <= metrics['mR'] <= 100
