"""An excluded image never reaches a batch: the smoke config's training loader, built as the Runner
builds it, iterated for a whole epoch."""

import json
import os
import shutil

import pytest
from conftest import REPO, SHARED_DATA
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from rsretrieval.datasets import ExclusionEntry, make_demo_dataset, write_exclusion_list
from rsretrieval.registry import DATASETS
from rsretrieval.utils.config_files import read_config
from rsretrieval.utils.config_variables import replace_values
from rsretrieval.weights.hashing import file_sha256

SMOKE_CONFIG = REPO / 'configs' / 'cmpagl_demo+ucm_combined.py'
REAL_UCM = SHARED_DATA / 'ucm_captions'


@pytest.fixture(scope='module')
def ucm_like_root(tmp_path_factory):
    """UCM-Captions' layout (annotations/dataset_ucm.json, images/) holding other generated scenes."""
    source = make_demo_dataset(tmp_path_factory.mktemp('ucm_src') / 'scenes', 20, 4, 4, image_size=32, seed=11)
    root = tmp_path_factory.mktemp('ucm_like')
    (root / 'annotations').mkdir()
    shutil.copy(source / 'dataset_demo.json', root / 'annotations' / 'dataset_ucm.json')
    os.symlink(source / 'images', root / 'images')
    return root


def smoke_config(demo_root, ucm_root, exclusions, ucm_images: int, exclude: bool = True) -> dict:
    """configs/cmpagl_demo+ucm_combined.py on other data: its loaders as a dict, without workers."""
    cfg = read_config(str(SMOKE_CONFIG)).to_dict()
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        replace_values(cfg[loader], 'data_root', cfg['data_root'], str(demo_root))
        replace_values(cfg[loader], 'data_root', cfg['ucm_root'], str(ucm_root))
        cfg[loader].update(num_workers=0, persistent_workers=False)
    train = cfg['train_dataloader']
    for part in train['dataset']['datasets']:
        if exclude:
            part['exclude']['file'] = str(exclusions)
        else:
            del part['exclude']
    train['dataset']['datasets'][1]['subset']['num_images'] = ucm_images
    # the batches say which file each sample came from
    train['dataset']['pipeline'][-1]['meta_keys'] = ('sample_idx', 'image_id', 'caption_id', 'img_path')
    return cfg


def _train_names(root, ann):
    images = json.loads((root / ann).read_text())['images']
    return [img['filename'] for img in images if img['split'] == 'train']


def _entries(source, root, names):
    return [ExclusionEntry(source, 'train', n, file_sha256(str(root / 'images' / n)), 'planted') for n in names]


def epoch_samples(train_dataloader: dict) -> tuple[object, list[dict]]:
    """The dataset of the loader and every sample of one epoch, as the batches carry them."""
    with DefaultScope.overwrite_default_scope('rsretrieval'):
        loader = Runner.build_dataloader(train_dataloader, seed=0)
    samples = []
    for batch in loader:
        meta = batch['data_samples']
        samples += [dict(zip(meta, values)) for values in zip(*meta.values())]
    return loader.dataset, samples


def _check_epoch(dataset, samples, excluded_paths):
    """Every item once, ids consistent with the files, and no excluded file."""
    assert sorted(s['sample_idx'] for s in samples) == list(range(len(dataset)))
    for s in samples:
        assert dataset.image_paths[s['image_id']] == s['img_path']
        assert dataset.txt2img[s['caption_id']] == s['image_id']
    reached = {s['img_path'] for s in samples}
    assert not reached & excluded_paths, sorted(reached & excluded_paths)
    return reached


def test_an_excluded_image_never_reaches_a_batch(tmp_path, demo_root, ucm_like_root):
    demo_out = _train_names(demo_root, 'dataset_demo.json')[::6]  # 4 of 24
    ucm_out = _train_names(ucm_like_root, 'annotations/dataset_ucm.json')[1::5]  # 4 of 20
    exclusions = tmp_path / 'exclusions.json'
    entries = _entries('demo', demo_root, demo_out) + _entries('ucm', ucm_like_root, ucm_out)
    write_exclusion_list(str(exclusions), entries, check=dict(hash='planted'))
    excluded = {str(demo_root / 'images' / n) for n in demo_out} | {
        os.path.abspath(ucm_like_root / 'images' / n) for n in ucm_out
    }

    cfg = smoke_config(demo_root, ucm_like_root, exclusions, ucm_images=16)
    dataset, samples = epoch_samples(cfg['train_dataloader'])
    reached = _check_epoch(dataset, samples, excluded)
    demo, ucm = dataset.parts
    assert (len(demo.images), len(ucm.images)) == (20, 16)  # every image the exclusion left
    assert len(reached) == 36
    assert [p.metainfo['exclusions']['images'] for p in dataset.parts] == [4, 4]

    # the control: without the list the same epoch carries the excluded files
    cfg = smoke_config(demo_root, ucm_like_root, exclusions, ucm_images=16, exclude=False)
    dataset, samples = epoch_samples(cfg['train_dataloader'])
    assert {str(demo_root / 'images' / n) for n in demo_out} <= {s['img_path'] for s in samples}


@pytest.mark.skipif(not REAL_UCM.is_dir(), reason='../shared/data/ucm_captions is absent')
def test_an_excluded_ucm_image_never_reaches_a_batch(tmp_path, demo_root):
    # the images the smoke config's UCM subset draws without a list: the ones worth excluding
    cfg = smoke_config(demo_root, REAL_UCM, None, ucm_images=210, exclude=False)
    part = dict(cfg['train_dataloader']['dataset']['datasets'][1], test_mode=True, check_images=False)
    drawn = [os.path.relpath(p, REAL_UCM / 'images') for p in DATASETS.build(part).image_paths]
    ucm_out = drawn[::42]  # 5 of the 210
    demo_out = _train_names(demo_root, 'dataset_demo.json')[:3]
    exclusions = tmp_path / 'exclusions.json'
    entries = _entries('ucm', REAL_UCM, ucm_out) + _entries('demo', demo_root, demo_out)
    write_exclusion_list(str(exclusions), entries, check=dict(hash='planted'))
    excluded = {str(REAL_UCM / 'images' / n) for n in ucm_out} | {str(demo_root / 'images' / n) for n in demo_out}

    cfg = smoke_config(demo_root, REAL_UCM, exclusions, ucm_images=210)
    dataset, samples = epoch_samples(cfg['train_dataloader'])
    _check_epoch(dataset, samples, excluded)
    demo, ucm = dataset.parts
    assert (len(demo.images), len(ucm.images)) == (21, 210)
    assert ucm.metainfo['subset_of'] == 1675 and ucm.metainfo['exclusions']['images'] == 5
