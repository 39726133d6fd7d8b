"""Components from outside the library: custom_imports, entry points, clashes, unknown names."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import REPO
from helpers import TINY_DEMO_OPTIONS
from torch import nn

from rsretrieval import plugins
from rsretrieval.registry import BACKBONES, FUSION_HEADS, LOSSES, RERANKERS, TEXT_ENCODERS

# One new component for every component registry, each a working class.
CUSTOM_MODULE = '''
import torch
import torch.nn.functional as F
from torch import nn

from rsretrieval.models.fusion_heads import PreAlignedFusion
from rsretrieval.models.text_encoders import BertTextEncoder
from rsretrieval.registry import BACKBONES, FUSION_HEADS, LOSSES, RERANKERS, TEXT_ENCODERS
from rsretrieval.rerankers.base_reranker import BaseReranker


@BACKBONES.register_module()
class StridedConvNet(nn.Module):
    """Two strided convolutions; tokens = the mean, then every position of the map."""

    def __init__(self, width=16):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, width, 4, stride=4), nn.GELU(), nn.Conv2d(width, width, 2, stride=2))
        self.out_channels = width

    def forward(self, images):
        tokens = self.net(images).flatten(2).transpose(1, 2)  # (B, N, D)
        return torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)


@TEXT_ENCODERS.register_module()
class FirstLayersBert(BertTextEncoder):
    """The offline MiniLM BERT cut to its first ``num_layers`` layers (default 1)."""

    def __init__(self, num_layers=1, **kwargs):
        super().__init__(pretrained='minilm-l6', num_layers=num_layers, **kwargs)


@FUSION_HEADS.register_module()
class MeanPoolFusion(PreAlignedFusion):
    """Pre-aligned fusion whose match head always reads the mean fused token."""

    def __init__(self, image_width, **kwargs):
        super().__init__(image_width, itm_pooling='mean', **kwargs)


@LOSSES.register_module()
class CosineAlignLoss(nn.Module):
    """Pulls each image embedding towards its caption's: mean of 1 - cosine."""

    def forward(self, img_emb, txt_emb, image_ids):
        return (1 - F.cosine_similarity(img_emb.float(), txt_emb.float(), dim=-1)).mean()


@RERANKERS.register_module()
class SoftmaxRerank(BaseReranker):
    """Each query's softmax over its candidates (rank-preserving)."""

    def rerank_rows(self, sims):
        return sims.softmax(dim=1)
'''

CUSTOM_CONFIG = """
_base_ = ['{repo}/configs/cmpagl_demo.py']
custom_imports = dict(imports=['my_rs_components'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='StridedConvNet', width=16),
    text_encoder=dict(_delete_=True, type='FirstLayersBert', max_length=30),
    fusion_head=dict(_delete_=True, type='MeanPoolFusion', pretrained='minilm-l6', num_layers=1, layer_start=1),
    triplet=dict(_delete_=True, type='CosineAlignLoss'),
)
test_cfg = dict(reranker=dict(type='SoftmaxRerank'))
"""

# demo options without the Gswin-specific ones
OPTIONS = [o for o in TINY_DEMO_OPTIONS if not o.startswith(('model.backbone', 'model.text_encoder'))]


def _run(args, env_path, cwd=REPO):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(env_path), os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_custom_imports_reach_every_component_registry(tmp_path, demo_root):
    (tmp_path / 'my_rs_components.py').write_text(CUSTOM_MODULE)
    config = tmp_path / 'custom.py'
    config.write_text(CUSTOM_CONFIG.format(repo=REPO))
    work = tmp_path / 'work'
    _run(['tools/train.py', str(config), '--work-dir', str(work), '--cfg-options', f'data_root={demo_root}', *OPTIONS],
         tmp_path)  # fmt: skip
    checkpoint = (work / 'last_checkpoint').read_text().strip()
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    assert 'backbone.net.0.weight' in state  # the plugin backbone was trained
    assert sum(k.startswith('text_encoder.bert.encoder.layer.') and k.endswith('query.weight') for k in state) == 1
    out = _run(['tools/test.py', str(config), checkpoint, '--work-dir', str(work),
                '--cfg-options', f'data_root={demo_root}', *OPTIONS], tmp_path)  # fmt: skip
    assert '| test + SoftmaxRerank |' in out


DIST_INFO_ENTRY_POINTS = """[rsretrieval.plugins]
ep_plugin = ep_rs_plugin
"""

EP_MODULE = """
import torch
from torch import nn

from rsretrieval.registry import BACKBONES


@BACKBONES.register_module()
class EntryPointConvNet(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 8, stride=8)
        self.out_channels = width

    def forward(self, images):
        tokens = self.stem(images).flatten(2).transpose(1, 2)
        return torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)
"""


def _install_fake_distribution(site, name, module_name, module_text, entry_points):
    """What pip leaves in site-packages: the module and a .dist-info with entry points."""
    (site / f'{module_name}.py').write_text(module_text)
    info = site / f'{name}-0.1.dist-info'
    info.mkdir(parents=True)
    (info / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n')
    (info / 'entry_points.txt').write_text(entry_points)


def test_installed_plugin_found_through_its_entry_point(tmp_path, demo_root):
    site = tmp_path / 'site'
    site.mkdir()
    _install_fake_distribution(site, 'ep-rs-plugin', 'ep_rs_plugin', EP_MODULE, DIST_INFO_ENTRY_POINTS)
    config = tmp_path / 'ep.py'
    config.write_text(  # no custom_imports: the registry finds the class through the entry point
        f"_base_ = ['{REPO}/configs/cmpagl_demo.py']\n"
        "model = dict(backbone=dict(_delete_=True, type='EntryPointConvNet'))\n"
    )
    work = tmp_path / 'work'
    _run(['tools/train.py', str(config), '--work-dir', str(work), '--cfg-options', f'data_root={demo_root}',
          *[o for o in OPTIONS if not o.startswith('model.fusion_head')]], site)  # fmt: skip
    state = torch.load((work / 'last_checkpoint').read_text().strip(), map_location='cpu', weights_only=False)
    assert 'backbone.stem.weight' in state['state_dict']


def test_plugins_load_only_when_a_lookup_misses(tmp_path):
    site = tmp_path / 'site'
    site.mkdir()
    _install_fake_distribution(site, 'ep-rs-plugin', 'ep_rs_plugin', EP_MODULE, DIST_INFO_ENTRY_POINTS)
    code = textwrap.dedent(
        """
        import sys
        from rsretrieval import plugins
        from rsretrieval.registry import BACKBONES
        assert BACKBONES.get('Gswin') is not None
        assert not plugins.plugins_loaded() and 'ep_rs_plugin' not in sys.modules
        assert BACKBONES.get('EntryPointConvNet').__module__ == 'ep_rs_plugin'
        print(plugins.load_plugins())
        """
    )
    out = _run(['-c', code], site)
    assert "'ep_plugin': 'ep-rs-plugin 0.1'" in out


def test_a_broken_plugin_is_reported_not_skipped(tmp_path, monkeypatch):
    site = tmp_path / 'site'
    site.mkdir()
    _install_fake_distribution(
        site, 'broken-plugin', 'broken_rs_plugin', 'raise RuntimeError("missing dependency")\n',
        '[rsretrieval.plugins]\nbroken = broken_rs_plugin\n',
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(site))
    try:
        with pytest.raises(plugins.PluginError, match=r'broken = broken_rs_plugin \(broken-plugin 0.1\).*missing'):
            plugins.load_plugins(reload=True)
        with pytest.raises(plugins.PluginError):  # and again on the next miss: never silently dropped
            BACKBONES.get('NoSuchBackbone')
    finally:
        monkeypatch.undo()
        plugins.load_plugins(reload=True)


@pytest.mark.parametrize(
    ('registry', 'builtin'),
    [(BACKBONES, 'Gswin'), (TEXT_ENCODERS, 'BertTextEncoder'), (FUSION_HEADS, 'PreAlignedFusion'),
     (LOSSES, 'ITCLoss'), (RERANKERS, 'SMR')],
)  # fmt: skip
def test_a_name_clash_with_a_builtin_fails_unless_forced(registry, builtin):
    original = registry.get(builtin)

    class Impostor(nn.Module):
        pass

    clash = rf"'{builtin}' is already registered in the .* registry by .*{builtin}.*force=True"
    with pytest.raises(KeyError, match=clash):
        registry.register_module(name=builtin, module=Impostor)
    assert registry.get(builtin) is original
    try:
        registry.register_module(name=builtin, module=Impostor, force=True)
        assert registry.get(builtin) is Impostor
    finally:
        registry.register_module(name=builtin, module=original, force=True)


@pytest.mark.parametrize(
    ('registry', 'expected'),
    [(BACKBONES, ['GCViT', 'Gswin', 'Swin', 'ViT']), (LOSSES, ['ITCLoss', 'MLMLoss']), (RERANKERS, ['MR', 'SMR'])],
)
def test_unknown_type_lists_the_registered_names(registry, expected):
    with pytest.raises(KeyError) as err:
        registry.build(dict(type='DoesNotExist'))
    message = str(err.value)
    assert 'Unknown' in message and 'DoesNotExist' in message and 'rsretrieval.plugins' in message
    assert all(name in message for name in expected)
