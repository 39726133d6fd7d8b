"""Per-part evaluation of a dataset with ``parts``: each part as if evaluated alone, and the mean over them."""

from dataclasses import dataclass

import pytest
import torch
from helpers import captured_log, tiny_runner_cfg
from mmengine.runner import Runner

from rsretrieval.datasets import RSCaptionDataset
from rsretrieval.engine.loops.retrieval_loops import slice_features
from rsretrieval.evaluation import chance_recall, check_parts, metrics_over_parts, part_ground_truth
from rsretrieval.registry import DATASETS

TEST_PIPELINE = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='PackRetrievalInputs'),
]
CUT = 4  # the first part's images; the loader's batches hold 4 images, so no batch straddles the parts


@dataclass(frozen=True)
class FakePart:
    name: str
    images: range
    captions: range


class TwoPartDemo(RSCaptionDataset):
    """The demo test split cut in two parts at image ``CUT``: a stand-in for a combined dataset."""

    @property
    def parts(self) -> list[FakePart]:
        n_img, n_txt, caption_cut = len(self.img2txt), len(self.txt2img), self.img2txt[CUT][0]
        return [
            FakePart('alpha', range(0, CUT), range(0, caption_cut)),
            FakePart('beta', range(CUT, n_img), range(caption_cut, n_txt)),
        ]


@pytest.fixture(scope='module', autouse=True)
def _registered_two_part_demo():
    """``TwoPartDemo`` in the registry while this module runs (a Runner config names its dataset's type)."""
    DATASETS.register_module(module=TwoPartDemo, force=True)
    yield
    DATASETS._module_dict.pop('TwoPartDemo')


def _dataset(data_root, kind='RSCaptionDataset', **kwargs):
    return dict(
        type=kind,
        data_root=str(data_root),
        ann_file='dataset_demo.json',
        data_prefix=dict(img_path='images'),
        split='test',
        test_mode=True,
        pipeline=TEST_PIPELINE,
        **kwargs,
    )


def _runner(work_dir, dataset, overrides=None, **test_cfg):
    cfg = tiny_runner_cfg(str(work_dir), str(work_dir), log_level='INFO', **(overrides or {}))
    cfg['test_dataloader'] = dict(cfg['test_dataloader'], dataset=dataset, batch_size=CUT)
    cfg['val_dataloader'] = dict(cfg['val_dataloader'], dataset=dataset, batch_size=CUT)
    cfg['test_cfg'] = dict(cfg['test_cfg'], **test_cfg)
    cfg['val_cfg'] = dict(cfg['val_cfg'], **test_cfg)
    return Runner.from_cfg(cfg)


@pytest.mark.parametrize('reranker', [None, dict(type='SMR', topk=3)])
def test_parts_give_each_part_its_metrics_alone_and_their_mean(tmp_path, demo_root, reranker):
    runner = _runner(tmp_path / 'parts', _dataset(demo_root, 'TwoPartDemo'), reranker=reranker)
    with captured_log() as messages:
        metrics = runner.test()
    n_img = len(DATASETS.build(_dataset(demo_root)).img2txt)
    alone = {
        'alpha': _runner(tmp_path / 'alpha', _dataset(demo_root, indices=list(range(CUT))), reranker=reranker).test(),
        'beta': _runner(
            tmp_path / 'beta', _dataset(demo_root, indices=list(range(CUT, n_img))), reranker=reranker
        ).test(),
    }
    for name, part_metrics in alone.items():
        assert {k: metrics[f'{name}/{k}'] for k in part_metrics} == part_metrics
    keys = list(alone['alpha'])
    assert sorted(metrics) == sorted(keys + [f'{name}/{k}' for name in alone for k in keys])
    for k in keys:
        assert metrics[k] == pytest.approx((alone['alpha'][k] + alone['beta'][k]) / 2, abs=1e-12)
    log = '\n'.join(messages)
    assert 'test retrieval results, part alpha (4 images, 20 captions):' in log
    assert 'test retrieval results, part beta (4 images, 20 captions):' in log
    assert f"so mR = {metrics['mR']:.2f}, the mean of the parts' mR, is what best-checkpoint selection reads" in log
    assert '\n| mean over parts | ' in log and '\n| mean over parts, caption-equivalent | ' in log


def test_validation_with_parts_returns_the_mean_mr_parts(tmp_path, demo_root):
    no_checkpoints = dict(default_hooks=dict(checkpoint=None), custom_hooks=[])  # they need a training run
    metrics = _runner(tmp_path, _dataset(demo_root, 'TwoPartDemo'), no_checkpoints).val()
    assert metrics['mR'] == pytest.approx((metrics['alpha/mR'] + metrics['beta/mR']) / 2, abs=1e-12)
    assert 'beta/equiv/mR' in metrics and 'alpha/shared/text_queries' in metrics


def test_parts_refuse_out_file(tmp_path, demo_root):
    runner = _runner(tmp_path, _dataset(demo_root, 'TwoPartDemo'), out_file=str(tmp_path / 'sims.npz'))
    with pytest.raises(ValueError, match=r'out_file=.*has 2 parts \(alpha, beta\), each ranked on its own'):
        runner.test()
    assert not (tmp_path / 'sims.npz').exists()


IMG2TXT = [[0, 1], [2], [3, 4, 5], [6]]
TXT2IMG = [0, 0, 1, 2, 2, 2, 3]


def _parts(*spec):
    return [FakePart(name, range(*images), range(*captions)) for name, images, captions in spec]


def test_parts_ground_truth_is_renumbered_to_local_ids():
    first, second = check_parts(_parts(('a', (0, 2), (0, 3)), ('b', (2, 4), (3, 7))), IMG2TXT, TXT2IMG)
    captions = [f'caption {t}' for t in range(7)]
    assert part_ground_truth(second, IMG2TXT, TXT2IMG, captions) == dict(
        img2txt=[[0, 1, 2], [3]], txt2img=[0, 0, 0, 1], captions=['caption 3', 'caption 4', 'caption 5', 'caption 6']
    )
    assert part_ground_truth(first, IMG2TXT, TXT2IMG, captions)['img2txt'] == [[0, 1], [2]]


@pytest.mark.parametrize(
    'parts, message',
    [
        ([], 'non-empty sequence'),
        (_parts(('a', (0, 2), (0, 3)), ('a', (2, 4), (3, 7))), r"got 'a'"),
        (_parts(('raw', (0, 4), (0, 7))), "got 'raw'"),
        (_parts(('x/y', (0, 4), (0, 7))), "got 'x/y'"),
        ([FakePart('a', [0, 1, 2, 3], range(7))], r"parts\[0\] \('a'\)\.images must be a non-empty range"),
        (_parts(('a', (0, 2), (0, 3)), ('b', (3, 4), (3, 7))), 'images start at 3, the parts before end at 2'),
        (_parts(('a', (0, 2), (0, 3)), ('b', (1, 4), (3, 7))), 'images start at 1, the parts before end at 2'),
        (_parts(('a', (0, 2), (0, 3)), ('b', (2, 3), (3, 6))), 'cover images up to 3, the dataset has 4'),
        (_parts(('a', (0, 2), (0, 4)), ('b', (2, 4), (4, 7))), r"part 'a': caption 3 belongs to image 2, outside"),
    ],
)
def test_bad_parts_are_refused_naming_the_part(parts, message):
    with pytest.raises(ValueError, match=message):
        check_parts(parts, IMG2TXT, TXT2IMG)


def test_metrics_over_parts_prefix_each_part_and_average_the_keys():
    out = metrics_over_parts(
        {'a': {'mR': 10.0, 'shared/text_queries': 3.0}, 'b': {'mR': 30.0, 'shared/text_queries': 0.0}}
    )
    assert out == {
        'a/mR': 10.0,
        'a/shared/text_queries': 3.0,
        'b/mR': 30.0,
        'b/shared/text_queries': 0.0,
        'mR': 20.0,
        'shared/text_queries': 1.5,
    }
    with pytest.raises(ValueError, match="part 'b' reports other metrics than part 'a'"):
        metrics_over_parts({'a': {'mR': 1.0}, 'b': {'i2t_R@1': 1.0}})


def test_features_of_a_part_are_sliced_parts():
    feats = dict(emb=torch.arange(10).view(5, 2), mask=torch.ones(5, 3))
    part = slice_features(feats, range(1, 3))
    assert part['emb'].tolist() == [[2, 3], [4, 5]] and part['mask'].shape == (2, 3)
    assert slice_features(torch.arange(5), range(3, 5)).tolist() == [3, 4]


def test_chance_row_of_a_part_with_fewer_captions_than_k_parts():
    # a part of 3 images and 4 captions: R@5 and R@10 draw every caption, so every image is a hit
    chance = chance_recall([[0, 1], [2], [3]])
    assert chance['i2t_R@5'] == chance['i2t_R@10'] == 100.0 and chance['t2i_R@5'] == 100.0
