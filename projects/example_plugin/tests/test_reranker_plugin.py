"""Tests of the example plugin's reranker: the rescoring, and ``tools/test.py --rerank`` choosing it."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

PROJECT = Path(__file__).resolve().parents[1]
REPO = PROJECT.parents[1]  # the rsretrieval checkout this example lives in
INSTALLED = any(e.name == 'example_plugin' for e in importlib.metadata.entry_points(group='rsretrieval.plugins'))
requires_install = pytest.mark.skipif(not INSTALLED, reason='pip install -e projects/example_plugin first')
ENV = dict(os.environ, HF_HUB_OFFLINE='1')
# configs/cmpagl_demo.py shrunk to a model that builds and tests in seconds on 32 px images
TINY_TEST_OPTIONS = {
    'model.backbone.img_size': 32,
    'model.backbone.patch_size': 4,
    'model.backbone.embed_dim': 8,
    'model.backbone.depths': (1, 1),
    'model.backbone.num_heads': (1, 2),
    'model.text_encoder.num_layers': 1,
    'model.fusion_head.layer_start': 1,
    'model.embed_dim': 16,
    'model.queue_size': 32,
    'test_dataloader.num_workers': 0,
    'test_dataloader.dataset.pipeline.1.scale': (32, 32),
}


def test_dual_softmax_pushes_a_shared_candidate_down():
    from rsretrieval_example_plugin import DualSoftmax

    # caption 0 matches both images; caption 1 matches image 1 only
    sims = torch.tensor([[0.9, 0.1], [0.85, 0.8]])
    i2t, t2i = DualSoftmax(temperature=0.05)(sims)
    assert sims.argmax(1).tolist() == [0, 0]
    assert i2t.argmax(1).tolist() == [0, 1]  # image 1 now ranks the caption only it matches first
    assert torch.allclose(i2t, sims * torch.softmax(sims / 0.05, dim=0))
    assert torch.allclose(t2i, sims * torch.softmax(sims / 0.05, dim=1))  # caption queries: over the images


def test_dual_softmax_keeps_the_input_type_and_checks_its_temperature():
    from rsretrieval_example_plugin import DualSoftmax

    sims = np.random.default_rng(0).uniform(-1, 1, (5, 7)).astype(np.float32)
    i2t, t2i = DualSoftmax()(sims)
    assert isinstance(i2t, np.ndarray) and i2t.dtype == np.float32 and i2t.shape == t2i.shape == (5, 7)
    with pytest.raises(ValueError, match='temperature must be > 0'):
        DualSoftmax(temperature=0)


def test_the_reranker_is_built_from_the_registry():
    from rsretrieval_example_plugin import DualSoftmax

    from rsretrieval.registry import RERANKERS

    reranker = RERANKERS.build(dict(type='DualSoftmax', temperature=0.2))
    assert isinstance(reranker, DualSoftmax) and reranker.temperature == 0.2


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory) -> tuple[Path, list[str]]:
    """A random tiny CMPAGL of configs/cmpagl_demo.py, and the ``--cfg-options`` values that build
    it on a generated demo dataset."""
    from rsretrieval.apis import init_model
    from rsretrieval.datasets import make_demo_dataset

    data = make_demo_dataset(tmp_path_factory.mktemp('demo') / 'scenes', 4, 2, 6, image_size=32, seed=1)
    options = {'data_root': str(data), **TINY_TEST_OPTIONS}
    torch.manual_seed(0)
    state = init_model(REPO / 'configs' / 'cmpagl_demo.py', cfg_options=options).state_dict()
    checkpoint = tmp_path_factory.mktemp('checkpoint') / 'tiny.pth'
    torch.save({'state_dict': state, 'meta': {}}, checkpoint)
    return checkpoint, [f'{key}={value}' for key, value in options.items()]


def _test_tool(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, 'tools/test.py', 'configs/cmpagl_demo.py', *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=ENV, timeout=600)


@requires_install
def test_tools_test_reranks_with_the_plugin_reranker(tmp_path, tiny_checkpoint):
    from rsretrieval_example_plugin import DualSoftmax

    from rsretrieval.evaluation import load_similarity, recall_at_k

    checkpoint, options = tiny_checkpoint
    npz, metrics_file = tmp_path / 'sims.npz', tmp_path / 'metrics.json'
    run = _test_tool(
        str(checkpoint), '--work-dir', str(tmp_path / 'work'), '--rerank', 'dualsoftmax',
        '--rerank-options', 'temperature=0.05', '--out', str(npz), '--dump-metrics', str(metrics_file),
        '--cfg-options', *options,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert '| test + DualSoftmax |' in run.stdout + run.stderr
    saved = load_similarity(npz)
    expected_i2t, expected_t2i = DualSoftmax(temperature=0.05)(saved['sims'])
    assert np.allclose(saved['sims_i2t'], expected_i2t, atol=1e-6)
    assert np.allclose(saved['sims_t2i'], expected_t2i, atol=1e-6)
    metrics = json.loads(metrics_file.read_text())
    reranked = recall_at_k(expected_i2t, expected_t2i, saved['img2txt'], saved['txt2img'])
    assert metrics['mR'] == pytest.approx(reranked['mR'], abs=1e-4)


@requires_install
def test_an_unknown_reranker_lists_the_plugin_reranker(tiny_checkpoint, tmp_path):
    checkpoint, _ = tiny_checkpoint
    run = _test_tool(str(checkpoint), '--work-dir', str(tmp_path), '--rerank', 'nope')
    assert run.returncode == 2 and 'Traceback' not in run.stderr
    [line] = [line for line in run.stderr.splitlines() if 'error:' in line]
    assert "unknown reranker 'nope'" in line and 'DualSoftmax' in line and 'SMR' in line
