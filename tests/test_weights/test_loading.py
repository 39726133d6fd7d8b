"""Pretrained image-backbone weights load completely, resized where a rule applies, and say so.

Checkpoints are timm models built with random weights (nothing is downloaded):
the real Swin-T layout (``swin_tiny_patch4_window7_224``) into the paper's Gswin
(window 8) and timm's Swin, a narrow ViT with ViT-B/16's key layout, GCViT-XXT.
"""

from __future__ import annotations

import pytest
import timm
import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed, resize_rel_pos_bias_table

from rsretrieval.models.backbones import GCViT, Gswin, Swin, ViT
from rsretrieval.models.backbones.gswin import swin_to_gswin
from rsretrieval.weights.loading import ConciseInitInfo, LoadReport, WeightLoadError, load_pretrained, module_kind
from rsretrieval.weights.pretrained import load_weights
from rsretrieval.weights.resize import resize_rel_pos_table

SWIN_T = 'swin_tiny_patch4_window7_224'
NARROW_VIT = dict(patch_size=16, embed_dim=192, depth=2, num_heads=3)  # ViT-B/16's key layout, fewer/narrower blocks
TINY_SWIN = dict(embed_dim=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 2, 4))  # Swin-T's depths, TINY_GSWIN's widths
TINY_GSWIN = dict(embed_dim=16, num_heads=(1, 2, 2, 4), drop_path_rate=0.0)

# timm's table interpolation (called directly below, for reference values) trips a torch deprecation note
pytestmark = pytest.mark.filterwarnings('ignore:Using a non-tuple sequence:UserWarning')


def _distinct(state: dict) -> dict:
    """Trained weights differ from timm's init (norms at 1, biases at 0): make every tensor distinct."""
    return {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()}


@pytest.fixture(scope='module')
def swin_t(tmp_path_factory):
    """``(path, state)``: a random ImageNet-layout Swin-T (window 7, 224) as safetensors."""
    torch.manual_seed(0)
    state = _distinct(timm.create_model(SWIN_T, pretrained=False).state_dict())
    path = tmp_path_factory.mktemp('swin_t') / 'model.safetensors'
    save_file(state, str(path))
    return path, state


def _gswin(**kwargs) -> Gswin:
    torch.manual_seed(1)
    return Gswin(**kwargs)  # the paper's: 256 px, patch 4, C 96, depths 1-1-3-1, heads 3-6-12-24, window 8


def _assert_filled_from(model_state: dict, report: LoadReport, source: dict, expected_resize) -> None:
    """Every loaded tensor equals its (converted) source, resized ones as ``expected_resize`` gives."""
    for key in report.loaded:
        want = source[key]
        if key in report.resized:
            want = expected_resize(key, want, tuple(model_state[key].shape))
        assert torch.equal(model_state[key], want), key


# --------------------------------------------------------------------------- Swin-T -> Gswin
def test_swin_t_into_the_paper_gswin(swin_t):
    path, state = swin_t
    model = _gswin(pretrained=str(path))
    model.init_weights()
    report = model.load_report
    assert (len(report.loaded), len(report.resized), len(report.new), len(report.dropped)) == (135, 12, 122, 38)
    assert report.resized_groups == {'relative-position tables 13x13 -> 15x15': 12}
    assert report.new_groups == {'global window generator': 68, 'cross-attention': 54}
    assert report.dropped_groups == {'first-block MLP of each Swin pair': 36, 'classifier head': 2}
    own = model.state_dict()
    tables = [k for k in own if k.endswith('rel_bias.table') and 'cross_attn' not in k]
    assert len(tables) == 12 and set(tables) == set(report.resized)

    def timm_resize(key, value, shape):
        return resize_rel_pos_bias_table(value, new_window_size=(8, 8), new_bias_shape=shape)

    _assert_filled_from(own, report, swin_to_gswin(state), timm_resize)
    # the mapping itself: Swin block 2j -> local branch, 2j+1 -> shifted branch and MLP, merging moved
    block = model.stages[2].blocks[1]
    assert torch.equal(block.local_attn.qkv.weight, state['layers.2.blocks.2.attn.qkv.weight'])
    assert torch.equal(block.shifted_attn.proj.bias, state['layers.2.blocks.3.attn.proj.bias'])
    assert torch.equal(block.norm_mlp.weight, state['layers.2.blocks.3.norm2.weight'])
    assert torch.equal(block.mlp.fc2.weight, state['layers.2.blocks.3.mlp.fc2.weight'])
    assert torch.equal(model.stages[0].downsample.reduction.weight, state['layers.1.downsample.reduction.weight'])
    assert torch.equal(model.patch_norm.weight, state['patch_embed.norm.weight'])


@pytest.mark.parametrize(
    'switch, counts, dropped',
    [
        (dict(use_global_window=False), (135, 12, 0, 38), {}),
        (dict(use_shifted_window=False), (93, 6, 122, 80), {'shifted-window branch (absent: w/o SLW)': 42}),
    ],
    ids=['w/o GW', 'w/o SLW'],
)
def test_swin_t_into_the_ablations(swin_t, switch, counts, dropped):
    path, state = swin_t
    model = _gswin(pretrained=str(path), **switch)
    model.init_weights()
    report = model.load_report
    assert (len(report.loaded), len(report.resized), len(report.new), len(report.dropped)) == counts
    assert report.dropped_groups.items() >= dropped.items()
    _assert_filled_from(
        model.state_dict(), report, swin_to_gswin(state), lambda k, v, s: resize_rel_pos_bias_table(v, (8, 8), s)
    )


def _release_layout(state: dict) -> dict:
    """The original Swin release's layout: patch merging ends a stage, window buffers stored."""
    release = {}
    for key, value in state.items():
        if '.downsample.' in key:
            stage = int(key.split('.')[1])
            key = key.replace(f'layers.{stage}.', f'layers.{stage - 1}.')
        release[key.replace('head.fc.', 'head.')] = value
    release['layers.0.blocks.0.attn.relative_position_index'] = torch.zeros(49 * 49, dtype=torch.long)
    release['layers.0.blocks.1.attn_mask'] = torch.zeros(64, 49, 49)
    return release


def test_original_swin_release_layout_maps_the_same(swin_t):
    _, state = swin_t
    release = _release_layout(state)
    assert Swin.convert(release).keys() - state.keys() == {
        'layers.0.blocks.0.attn.relative_position_index',
        'layers.0.blocks.1.attn_mask',
    }
    from_timm, from_release = swin_to_gswin(state), swin_to_gswin(release)
    assert from_release.keys() - from_timm.keys() == {
        'stages.0.blocks.0.local_attn.relative_position_index',  # dropped by the loader as derived
        'layers.0.blocks.1.attn_mask',
    }
    assert all(from_release[k] is v for k, v in from_timm.items())


# --------------------------------------------------------------------------- resize rules
def test_resized_table_is_timms_and_the_same_window_is_the_identity(swin_t):
    _, state = swin_t
    table = state['layers.0.blocks.0.attn.relative_position_bias_table']  # (13 * 13, 3)
    owner = torch.nn.Module()
    resized, change = resize_rel_pos_table(table, (225, 3), owner)
    assert change == '13x13 -> 15x15'
    assert torch.equal(resized, resize_rel_pos_bias_table(table, new_window_size=(8, 8), new_bias_shape=(225, 3)))
    same, change = resize_rel_pos_table(table, (169, 3), owner)
    assert torch.equal(same, table) and change == '13x13 -> 13x13'


# --------------------------------------------------------------------------- timm backbones
def test_vit_224_into_vit_256_resizes_the_position_embedding(tmp_path):
    torch.manual_seed(0)
    source = timm.models.vision_transformer.VisionTransformer(img_size=224, **NARROW_VIT)
    real = timm.create_model('vit_base_patch16_224', pretrained=False, device='meta')
    assert {module_kind(k) for k in source.state_dict()} == {module_kind(k) for k in real.state_dict()}
    state = source.state_dict()
    torch.save(state, tmp_path / 'vit.pth')
    model = ViT(img_size=256, pretrained=str(tmp_path / 'vit.pth'), **NARROW_VIT)
    model.init_weights()
    report = model.load_report
    assert list(report.resized) == ['pos_embed'] and report.dropped_groups == {'classifier head': 2}
    pos = model.model.pos_embed
    assert pos.shape == (1, 257, 192)
    assert torch.equal(pos[:, :1], state['pos_embed'][:, :1])  # the class token's position is kept
    assert torch.equal(pos, resample_abs_pos_embed(state['pos_embed'], [16, 16], num_prefix_tokens=1))
    assert torch.equal(model.model.cls_token, state['cls_token'])
    assert len(report.loaded) == len(model.model.state_dict())


def test_swin_t_window_7_into_swin_window_8(swin_t):
    path, state = swin_t
    model = Swin(window_size=8, pretrained=str(path))
    model.init_weights()
    report = model.load_report
    assert len(report.loaded) == 171 and len(report.resized) == 12
    assert report.dropped_groups == {'classifier head': 2} and not report.new

    def timm_resize(key, value, shape):
        return resize_rel_pos_bias_table(value, new_window_size=(8, 8), new_bias_shape=shape)

    _assert_filled_from(model.model.state_dict(), report, state, timm_resize)
    # the original release's layout (and its stored window buffers) loads the same tensors
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    model.model.apply(lambda m: [torch.nn.init.zeros_(p) for p in m.parameters(recurse=False)])
    again = load_pretrained(model.model, _release_layout(state), convert=Swin.convert)
    assert again.dropped_groups == {'classifier head': 2, 'buffers rebuilt from the window': 2}
    assert all(torch.equal(v, before[k]) for k, v in model.model.state_dict().items())


def test_gcvit_xxt_224_into_gcvit_256(tmp_path):
    torch.manual_seed(0)
    state = timm.create_model('gcvit_xxtiny', pretrained=False).state_dict()
    save_file(state, str(tmp_path / 'gcvit.safetensors'))
    model = GCViT(depths=(2, 2, 6, 2), num_heads=(2, 4, 8, 16), pretrained=str(tmp_path / 'gcvit.safetensors'))
    model.init_weights()
    report = model.load_report
    assert report.resized_groups == {
        'relative-position tables 13x13 -> 15x15': 6,
        'relative-position tables 27x27 -> 31x31': 6,
    }
    own = model.model.state_dict()

    def timm_resize(key, value, shape):
        side = (int(shape[0] ** 0.5) + 1) // 2
        return resize_rel_pos_bias_table(value, new_window_size=(side, side), new_bias_shape=shape)

    _assert_filled_from(own, report, state, timm_resize)
    assert len(report.loaded) == len(own)


# --------------------------------------------------------------------------- errors
def test_a_tensor_without_a_resize_rule_is_a_one_line_error():
    model = Swin(**TINY_SWIN).model
    state = dict(model.state_dict(), **{'patch_embed.proj.weight': torch.zeros(24, 3, 4, 4)})
    with pytest.raises(WeightLoadError) as err:
        load_pretrained(model, state, source_name='wide.pth')
    message = str(err.value)
    assert '\n' not in message
    assert message.startswith('wide.pth: patch_embed.proj.weight: checkpoint (24, 3, 4, 4) vs model (16, 3, 4, 4)')
    assert 'no resize rule' in message


def test_a_checkpoint_of_another_architecture_is_an_error():
    torch.manual_seed(0)
    vit = timm.models.vision_transformer.VisionTransformer(img_size=224, **NARROW_VIT).state_dict()
    swin = Swin(**TINY_SWIN)
    with pytest.raises(
        WeightLoadError,
        match=r"does not fit SwinTransformer: the checkpoint holds \d+ tensors .*; (\d+) of the model's \1 tensors",
    ) as err:
        load_pretrained(swin.model, vit)
    assert '\n' not in str(err.value) and 'cls_token' in str(err.value)


def test_tensors_left_unfilled_are_an_error_unless_declared_new(tmp_path):
    swin = Swin(**TINY_SWIN).model.state_dict()
    gswin = Gswin(**TINY_GSWIN)
    n_new = sum(1 for _ in gswin.parameters()) - sum(
        1 for _ in Gswin(**TINY_GSWIN, use_global_window=False).parameters()
    )
    with pytest.raises(WeightLoadError, match=f'leaves {n_new} tensors of Gswin unfilled') as err:
        load_pretrained(gswin, swin, convert=swin_to_gswin)
    assert '\n' not in str(err.value) and 'new_in_architecture' in str(err.value)
    torch.save(swin, tmp_path / 'swin.pth')
    report = load_pretrained(
        gswin,
        tmp_path / 'swin.pth',
        convert=swin_to_gswin,
        new_in_architecture=gswin.new_in_architecture(),
        source_name='swin-t-tiny',
    )
    assert len(report.new) == n_new
    assert report.header() == f'Gswin <- swin-t-tiny ({tmp_path / "swin.pth"}, sha256 {report.sha256[:8]})'


def test_load_weights_delegates(tmp_path):
    torch.save(Swin(**TINY_SWIN).model.state_dict(), tmp_path / 'swin.pth')
    model = Gswin(**TINY_GSWIN)
    new, dropped = load_weights(
        model, tmp_path / 'swin.pth', convert=swin_to_gswin, new_in_architecture=model.new_in_architecture()
    )
    assert new and all('gwg' in k or 'cross' in k for k in new)
    assert dropped and all('.mlp.' in k or '.norm2.' in k for k in dropped)
    with pytest.raises(WeightLoadError, match='strict loading'):
        load_weights(
            model,
            tmp_path / 'swin.pth',
            convert=swin_to_gswin,
            strict=True,
            new_in_architecture=model.new_in_architecture(),
        )


# --------------------------------------------------------------------------- the log
class _Top(ConciseInitInfo, BaseModule):
    """A top-level model as a training run builds it: the backbone is a child."""

    def __init__(self, pretrained: str) -> None:
        super().__init__()
        self.backbone = Gswin(**TINY_GSWIN, pretrained=pretrained)
        self.proj = torch.nn.Linear(128, 8)


def test_log_has_the_short_summary_and_no_per_parameter_lines(swin_t, tmp_path):
    path, _ = swin_t
    torch.save(_distinct(Swin(**TINY_SWIN).model.state_dict()), tmp_path / 'tiny_swin.pth')
    log_file = tmp_path / 'train.log'
    logger = MMLogger.get_instance(f'test_loading_log_{tmp_path.name}', log_file=str(log_file), log_level='INFO')
    try:
        standalone = _gswin(pretrained=str(path))
        standalone.init_weights()  # the top-level module: it runs mmengine's init dump
        top = _Top(pretrained=str(tmp_path / 'tiny_swin.pth'))
        top.init_weights()  # as in training: the model on top, Gswin inside
    finally:
        for handler in logger.handlers:
            handler.close()
        logger.handlers.clear()
    text = log_file.read_text()
    assert 'value is the same' not in text and 'Name of parameter' not in text
    assert f'Gswin <- {path} (sha256 ' in text
    assert 'loaded 135 tensors, 12 of them resized (relative-position tables 13x13 -> 15x15)' in text
    assert len(standalone.load_report.summary().splitlines()) <= 4
    n_params, n_loaded = sum(1 for _ in top.parameters()), len(top.backbone.load_report.loaded)
    assert f'init_weights of _Top: {n_loaded} of {n_params} parameter tensors changed' in text
