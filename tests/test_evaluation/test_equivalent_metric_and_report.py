"""Caption-equivalent recall in the metric, the results table, the loops and tools/test.py."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO
from helpers import captured_log, tiny_runner_cfg
from mmengine.runner import Runner

from rsretrieval.engine.loops.results_report import results_message, results_rows
from rsretrieval.evaluation import DenseScores, RetrievalRecall, recall_at_k, recall_at_k_equivalent

CAPTIONS = ['a farm land', 'many green trees', 'A farm land.', 'a river', 'many  green trees', 'a road', 'a beach']
IMG2TXT = [[0, 1], [2, 3], [4, 5], [6]]
TXT2IMG = [0, 0, 1, 1, 2, 2, 3]
STANDARD_KEYS = ['i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5', 't2i_R@10', 'mR']
SHARED_KEYS = ['shared/caption_strings', 'shared/text_queries', 'shared/image_queries']
ALL_KEYS = STANDARD_KEYS + [f'equiv/{k}' for k in STANDARD_KEYS] + SHARED_KEYS


def _metric(sims, **kwargs):
    metric = RetrievalRecall(**kwargs)
    metric.process(dict(img2txt=IMG2TXT, txt2img=TXT2IMG, captions=CAPTIONS), [DenseScores.from_raw(sims)])
    return metric.evaluate(1)


def test_metric_adds_equivalent_recall_and_shared_counts_beside_the_standard_keys():
    sims = torch.rand(4, 7, generator=torch.Generator().manual_seed(0))
    metrics = _metric(sims)
    assert list(metrics) == ALL_KEYS
    assert {k: metrics[k] for k in STANDARD_KEYS} == recall_at_k(sims, sims, IMG2TXT, TXT2IMG)
    equivalent = recall_at_k_equivalent(sims, sims, CAPTIONS, IMG2TXT, TXT2IMG)
    assert {k: metrics[f'equiv/{k}'] for k in STANDARD_KEYS} == equivalent
    assert [metrics[k] for k in SHARED_KEYS] == [2.0, 4.0, 3.0]


def test_metric_without_caption_equivalence_reports_the_standard_keys_only():
    sims = torch.rand(4, 7, generator=torch.Generator().manual_seed(1))
    metric = RetrievalRecall(caption_equivalent=False)
    metric.process(dict(img2txt=IMG2TXT, txt2img=TXT2IMG), [DenseScores.from_raw(sims)])  # no captions needed
    assert metric.evaluate(1) == recall_at_k(sims, sims, IMG2TXT, TXT2IMG)


def test_metric_given_no_captions_for_equivalent_recall_says_so():
    metric = RetrievalRecall()
    with pytest.raises(ValueError, match=r"caption_equivalent=True\) needs the captions as data_batch\['captions'\]"):
        metric.process(dict(img2txt=IMG2TXT, txt2img=TXT2IMG), [DenseScores.from_raw(torch.zeros(4, 7))])


def test_results_table_has_equivalent_rows_and_the_shared_line():
    sims = torch.rand(4, 7, generator=torch.Generator().manual_seed(2))
    metrics, raw = _metric(sims), _metric(sims.flip(1))
    rows = results_rows('test', metrics, IMG2TXT, raw=raw, reranker_name='SMR')
    assert list(rows) == [
        'chance',
        'test (raw)',
        'test + SMR',
        'test (raw), caption-equivalent',
        'test + SMR, caption-equivalent',
    ]
    assert rows['test + SMR, caption-equivalent']['mR'] == metrics['equiv/mR']
    assert rows['test (raw), caption-equivalent']['mR'] == raw['equiv/mR']
    assert list(results_rows('val', metrics, IMG2TXT)) == ['chance', 'val', 'val, caption-equivalent']
    shared = {'shared/caption_strings': 87.0, 'shared/text_queries': 412.0, 'shared/image_queries': 150.0}
    lines = results_message('test', rows, (1093, 5465), shared=shared, part='rsicd').splitlines()
    assert lines[0] == 'test retrieval results, part rsicd (1093 images, 5465 captions):'
    assert lines[-1] == (
        'shared captions: 87 strings on more than one image; 412 of 5,465 text queries and 150 of 1,093 '
        'image queries have more than one right answer (caption-equivalent rows count them)'
    )
    assert len(lines) == 1 + 2 + 5 + 1
    assert results_message('test', rows, (4, 7), shared={}).splitlines()[-1].startswith('| test + SMR, caption-')


@pytest.fixture(scope='module')
def shared_demo_root(demo_root, tmp_path_factory):
    """The demo dataset with three test captions copied onto other test images (case, spaces and
    a full stop changed): 2 shared strings, 4 text and 3 image queries touched."""
    root = tmp_path_factory.mktemp('shared_demo')
    os.symlink(demo_root / 'images', root / 'images')
    ann = json.loads((demo_root / 'dataset_demo.json').read_text())
    test = [image for image in ann['images'] if image['split'] == 'test']
    test[1]['sentences'][0]['raw'] = test[0]['sentences'][0]['raw'].upper() + ' .'
    test[2]['sentences'][3]['raw'] = '  ' + test[0]['sentences'][1]['raw']
    (root / 'dataset_demo.json').write_text(json.dumps(ann))
    return root


def _test_loop(work_dir, data_root, **test_cfg):
    cfg = tiny_runner_cfg(str(work_dir), str(data_root), log_level='INFO')
    cfg['test_cfg'] = dict(cfg['test_cfg'], **test_cfg)
    runner = Runner.from_cfg(cfg)
    with captured_log() as messages:
        metrics = runner.test()
    return metrics, '\n'.join(messages)


def test_loop_prints_and_returns_equivalent_recall(tmp_path, shared_demo_root):
    metrics, log = _test_loop(tmp_path, shared_demo_root)
    assert list(metrics) == ALL_KEYS
    assert [metrics[k] for k in SHARED_KEYS] == [2.0, 4.0, 3.0]
    assert all(metrics[f'equiv/{k}'] >= metrics[k] for k in STANDARD_KEYS)
    assert '\n| test, caption-equivalent | ' in log
    assert (
        'shared captions: 2 strings on more than one image; 4 of 40 text queries and 3 of 8 image queries '
        'have more than one right answer (caption-equivalent rows count them)'
    ) in log


def test_loop_with_a_reranker_adds_raw_equivalent_keys_and_counts_once(tmp_path, shared_demo_root):
    metrics, log = _test_loop(tmp_path, shared_demo_root, reranker=dict(type='SMR', topk=5))
    raw_keys = [f'raw/{k}' for k in STANDARD_KEYS] + [f'raw/equiv/{k}' for k in STANDARD_KEYS]
    assert sorted(metrics) == sorted(ALL_KEYS + raw_keys)
    table = [line.split(' | ')[0] for line in log.splitlines() if line.startswith('| ')]
    assert table[-5:] == [
        '| chance',
        '| test (raw)',
        '| test + SMR',
        '| test (raw), caption-equivalent',
        '| test + SMR, caption-equivalent',
    ]
    plain, _ = _test_loop(tmp_path / 'plain', shared_demo_root)
    assert {k: metrics[f'raw/{k}'] for k in plain if not k.startswith('shared/')} == {
        k: v for k, v in plain.items() if not k.startswith('shared/')
    }


def test_test_tool_dumps_equivalent_keys(tmp_path, shared_demo_root, tiny_demo_checkpoint):
    ckpt, options = tiny_demo_checkpoint
    options = [o if not o.startswith('data_root=') else f'data_root={shared_demo_root}' for o in options]
    dump = tmp_path / 'metrics.json'
    run = subprocess.run(
        [sys.executable, 'tools/test.py', 'configs/cmpagl_demo.py', str(ckpt), '--work-dir', str(tmp_path),
         '--dump-metrics', str(dump), *options],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=dict(os.environ, HF_HUB_OFFLINE='1'),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    dumped = json.loads(dump.read_text())
    assert set(ALL_KEYS) <= set(dumped) and dumped['shared/text_queries'] == 4.0
    assert 'shared captions: 2 strings on more than one image' in run.stdout + run.stderr
