"""Tests of the example plugin: the backbone contract, discovery and a training run."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

PROJECT = Path(__file__).resolve().parents[1]
REPO = PROJECT.parents[1]  # the rsretrieval checkout this example lives in
CONFIG = PROJECT / 'configs' / 'cmpagl_convnext_demo.py'
INSTALLED = any(e.name == 'example_plugin' for e in importlib.metadata.entry_points(group='rsretrieval.plugins'))
requires_install = pytest.mark.skipif(not INSTALLED, reason='pip install -e projects/example_plugin first')
ENV = dict(os.environ, HF_HUB_OFFLINE='1')


def test_backbone_contract():
    from rsretrieval_example_plugin import ConvNeXtBackbone

    net = ConvNeXtBackbone(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), drop_path_rate=0.0).eval()
    images = torch.randn(2, 3, 64, 96)
    tokens = net(images)
    assert net.out_channels == 64
    assert tokens.shape == (2, 1 + 2 * 3, 64)  # global token + (64/32) x (96/32) positions
    assert torch.allclose(tokens[:, 0], tokens[:, 1:].mean(1), atol=1e-6)
    with pytest.raises(ValueError, match='one entry per stage'):
        ConvNeXtBackbone(depths=(1, 1), dims=(8, 16, 32))


def test_backbone_is_a_configuration_of_the_timm_wrapper(tmp_path):
    from rsretrieval_example_plugin import ConvNeXtBackbone

    from rsretrieval.models.backbones import TimmBackbone

    cfg = dict(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), drop_path_rate=0.0)
    torch.manual_seed(0)
    net = ConvNeXtBackbone(**cfg).eval()
    torch.manual_seed(0)
    generic = TimmBackbone('convnext_tiny', 'nchw', **cfg).eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert isinstance(net, TimmBackbone) and torch.equal(net(images), generic(images))
    # weight loading is the library's: a checkpoint of the model fills it and is reported
    torch.save(net.model.state_dict(), tmp_path / 'convnext.pth')
    torch.manual_seed(1)
    loaded = ConvNeXtBackbone(**cfg, pretrained=str(tmp_path / 'convnext.pth'))
    loaded.init_weights()
    with torch.no_grad():
        assert torch.equal(loaded.eval()(images), net(images))
    assert loaded.load_report is not None


@requires_install
def test_registry_finds_the_installed_plugin_without_importing_it():
    code = (
        'import sys\n'
        'from rsretrieval.registry import BACKBONES\n'
        "assert 'rsretrieval_example_plugin' not in sys.modules\n"
        "cls = BACKBONES.get('ConvNeXtBackbone')\n"
        'print(cls.__module__)\n'
    )
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == 'rsretrieval_example_plugin.convnext'


@requires_install
def test_config_trains_and_tests_with_the_plugin_backbone(tmp_path):
    data = tmp_path / 'scenes'
    subprocess.run(
        [sys.executable, 'tools/misc/make_demo_dataset.py', str(data), '--num-train', '16', '--num-val', '4',
         '--num-test', '4', '--image-size', '64'],
        cwd=REPO, check=True, capture_output=True, env=ENV, timeout=300,
    )  # fmt: skip
    options = [
        f'data_root={data}', 'train_cfg.max_epochs=1', 'model.text_encoder.num_layers=1',
        'model.fusion_head.layer_start=1', 'model.queue_size=32', 'train_dataloader.batch_size=8',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
        'train_dataloader.dataset.pipeline.1.size=64', 'val_dataloader.dataset.pipeline.1.scale=(64,64)',
        'test_dataloader.dataset.pipeline.1.scale=(64,64)', 'param_scheduler.0.end=2',
    ]  # fmt: skip
    work = tmp_path / 'work'
    train = subprocess.run(
        [sys.executable, 'tools/train.py', str(CONFIG), '--work-dir', str(work), '--cfg-options', *options],
        cwd=REPO, capture_output=True, text=True, env=ENV, timeout=600,
    )  # fmt: skip
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    checkpoint = (work / 'last_checkpoint').read_text().strip()
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    assert 'backbone.model.stem.0.weight' in state  # the plugin's ConvNeXt was trained
    metrics = tmp_path / 'metrics.json'
    test = subprocess.run(
        [sys.executable, 'tools/test.py', str(CONFIG), checkpoint, '--work-dir', str(work), '--dump-metrics',
         str(metrics), '--cfg-options', *options],
        cwd=REPO, capture_output=True, text=True, env=ENV, timeout=600,
    )  # fmt: skip
    assert test.returncode == 0, test.stdout[-2000:] + test.stderr[-2000:]
    assert 0 <= json.loads(metrics.read_text())['mR'] <= 100
