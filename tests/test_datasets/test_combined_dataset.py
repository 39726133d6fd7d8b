"""``CombinedCaptionDataset``: parts concatenated with distinct ids, their ground truth and ``parts``."""

import json

import pytest
import torch
from helpers import captured_log
from mmengine.dataset import BaseDataset

from rsretrieval.datasets import CombinedCaptionDataset, DatasetPart, ReproducibleSampler, make_demo_dataset
from rsretrieval.registry import DATASETS

TRAIN_PIPELINE = [
    dict(type='LoadImage'),
    dict(type='RandomResizedCrop', size=16, scale=(0.5, 1.0)),
    dict(type='PackRetrievalInputs'),
]


@pytest.fixture(scope='module')
def other_root(tmp_path_factory):
    """A second demo dataset (other scenes, other files) standing in for another benchmark."""
    return make_demo_dataset(tmp_path_factory.mktemp('other') / 'scenes', 10, 4, 5, image_size=32, seed=7)


def _part(root, split, **kwargs):
    return dict(type='DemoSceneDataset', data_root=str(root), split=split, **kwargs)


def _combined(demo_root, other_root, split='train', test_mode=False, **kwargs):
    cfg = dict(
        type='CombinedCaptionDataset',
        datasets=[_part(demo_root, split), _part(other_root, split)],
        names=['demo', 'other'],
        test_mode=test_mode,
        pipeline=TRAIN_PIPELINE if not test_mode else [],
    )
    return DATASETS.build(dict(cfg, **kwargs))


def _alone(root, split, test_mode):
    return DATASETS.build(_part(root, split, test_mode=test_mode))


@pytest.mark.parametrize('test_mode', [False, True])
def test_ids_are_offset_so_that_no_two_parts_share_one(demo_root, other_root, test_mode):
    ds = _combined(demo_root, other_root, test_mode=test_mode)
    a, b = _alone(demo_root, 'train', test_mode), _alone(other_root, 'train', test_mode)
    n_img, n_cap = len(a.image_paths), len(a.captions)
    assert ds.image_paths == a.image_paths + b.image_paths
    assert ds.captions == a.captions + b.captions
    assert ds.img2txt == a.img2txt + [[n_cap + t for t in caps] for caps in b.img2txt]
    assert ds.txt2img == a.txt2img + [n_img + i for i in b.txt2img]
    assert len(ds) == len(a) + len(b)
    items = [ds.get_data_info(i) for i in range(len(ds))]
    # every item of the second part has ids past the first part's: image 0 of each is two images
    assert [it['image_id'] for it in items] == [it['image_id'] for it in a] + [n_img + it['image_id'] for it in b]
    assert {it['source'] for it in items[: len(a)]} == {'demo'} and {it['source'] for it in items[len(a) :]} == {
        'other'
    }
    for item in items:
        assert ds.image_paths[item['image_id']] == item['img_path']
        if not test_mode:
            assert ds.captions[item['caption_id']] == item['caption']
            assert ds.txt2img[item['caption_id']] == item['image_id']


def test_parts_give_each_datasets_global_ranges(demo_root, other_root):
    ds = _combined(demo_root, other_root, split='val', test_mode=True)
    a, b = _alone(demo_root, 'val', True), _alone(other_root, 'val', True)
    n_img, n_cap = len(a.image_paths), len(a.captions)
    assert [(p.name, p.images, p.captions) for p in ds.parts] == [
        ('demo', range(0, n_img), range(0, n_cap)),
        ('other', range(n_img, n_img + len(b.image_paths)), range(n_cap, n_cap + len(b.captions))),
    ]
    assert all(isinstance(p, DatasetPart) for p in ds.parts)
    for part, alone in zip(ds.parts, (a, b)):
        # a part's images own exactly its captions: its ground truth renumbered is the dataset's own
        local_img2txt = [[t - part.captions.start for t in ds.img2txt[i]] for i in part.images]
        assert local_img2txt == alone.img2txt
        assert [ds.captions[t] for t in part.captions] == alone.captions
        assert part.metainfo['split'] == 'val' and part.metainfo['num_images'] == len(alone.image_paths)
    assert ds.metainfo['num_images'] == n_img + len(b.image_paths)
    assert [p['name'] for p in ds.metainfo['parts']] == ['demo', 'other']


def test_one_log_line_per_part(demo_root, other_root):
    with captured_log() as messages:
        _combined(demo_root, other_root, split='val', test_mode=True)
    lines = [m for m in messages if m.startswith('combined dataset (test mode), part')]
    assert len(lines) == 2
    assert "part 'other'" in lines[1] and '4 images, 20 captions' in lines[1] and 'no exclusion list' in lines[1]


def test_reproducible_sampler_items_are_seeded(demo_root, other_root):
    ds = _combined(demo_root, other_root)
    sampler = ReproducibleSampler(ds, shuffle=True, seed=3)
    index, seed = next(iter(sampler))
    first, again = ds[(index, seed)], ds[(index, seed)]
    assert torch.equal(first['inputs'], again['inputs'])  # the same crop for the same seed
    other = ds[(index, seed + 1)]
    assert first['data_samples'] == other['data_samples'] and not torch.equal(first['inputs'], other['inputs'])


def test_a_part_keeps_its_own_subset(demo_root, other_root):
    ds = DATASETS.build(
        dict(
            type='CombinedCaptionDataset',
            datasets=[_part(demo_root, 'train', subset=dict(num_images=5)), _part(other_root, 'train')],
            names=['demo', 'other'],
            test_mode=True,
        )
    )
    assert [len(p.images) for p in ds.parts] == [5, 10]
    assert ds.parts[0].metainfo['subset_of'] == 24
    assert ds.img2txt[5] == list(range(25, 30))  # the second part starts after the subset's 25 captions


def test_default_names_must_be_unique(demo_root, other_root):
    cfg = dict(type='CombinedCaptionDataset', datasets=[_part(demo_root, 'val'), _part(other_root, 'val')])
    with pytest.raises(ValueError, match=r"rs_captions repeats among the parts' dataset names .*give names="):
        DATASETS.build(dict(cfg, test_mode=True))


@pytest.mark.parametrize(
    'kwargs, error, message',
    [
        (dict(datasets=[]), ValueError, 'non-empty list'),
        (dict(datasets=['RSCaptionDataset']), TypeError, r'datasets\[0\] must be a dataset config dict'),
        (dict(names=['a']), ValueError, 'names has 1 entries for 2 datasets'),
        (dict(names=['a', 'a']), ValueError, 'names must be unique, a repeats'),
        (dict(names=['a', 'b/c']), ValueError, 'without "/"'),
        (dict(indices=4), ValueError, 'takes no indices'),
    ],
)
def test_bad_arguments_are_one_line_errors(demo_root, other_root, kwargs, error, message):
    cfg = dict(
        type='CombinedCaptionDataset',
        datasets=[_part(demo_root, 'val'), _part(other_root, 'val')],
        names=['demo', 'other'],
        test_mode=True,
    )
    with pytest.raises(error, match=message):
        DATASETS.build(dict(cfg, **kwargs))


def test_a_part_in_another_mode_or_with_a_pipeline_is_refused(demo_root, other_root):
    with pytest.raises(ValueError, match=r'datasets\[1\] \(DemoSceneDataset\) has test_mode=False'):
        CombinedCaptionDataset(
            datasets=[_part(demo_root, 'val'), _part(other_root, 'val', test_mode=False)],
            names=['a', 'b'],
            test_mode=True,
        )
    with pytest.raises(ValueError, match=r'datasets\[0\] \(DemoSceneDataset\) has its own pipeline'):
        CombinedCaptionDataset(
            datasets=[_part(demo_root, 'val', pipeline=[dict(type='LoadImage')])], names=['a'], test_mode=True
        )


def test_a_parts_error_names_the_part(demo_root, tmp_path):
    missing = dict(type='RSCaptionDataset', data_root=str(tmp_path), ann_file='nowhere.json', split='val')
    with pytest.raises(FileNotFoundError, match=r'^datasets\[1\] \(ucm\): .*nowhere\.json'):
        CombinedCaptionDataset(datasets=[_part(demo_root, 'val'), missing], names=['demo', 'ucm'], test_mode=True)


def test_a_dataset_without_caption_ground_truth_is_refused(tmp_path):
    ann = tmp_path / 'plain.json'
    ann.write_text(json.dumps(dict(metainfo={}, data_list=[dict(img_path='x.png', image_id=0)])))
    plain = dict(type=BaseDataset, ann_file=str(ann))
    with pytest.raises(TypeError, match=r'datasets\[0\] \(plain\): BaseDataset exposes no image_paths, captions'):
        CombinedCaptionDataset(datasets=[plain], names=['plain'], test_mode=True)
