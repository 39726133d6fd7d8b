"""The backbone contract: (B, 1 + N, D), global token first, for every backbone."""

import pytest
import torch

from rsretrieval.models.backbones import gswin as gswin_module
from rsretrieval.models.backbones.gswin import (
    Gswin,
    ShiftedWindows,
    WindowAttention,
    shifted_window_mask,
    window_partition,
    window_reverse,
)
from rsretrieval.registry import BACKBONES

# Small widths keep the tests fast; the structure (stages, windows, GWG depth) is the real one.
TINY_GSWIN = dict(type='Gswin', embed_dim=16, num_heads=(1, 2, 2, 4), drop_path_rate=0.0)


def _build(cfg, seed=0):
    torch.manual_seed(seed)
    return BACKBONES.build(cfg).eval()


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    'cfg, size, tokens, width',
    [
        (TINY_GSWIN, 256, 64, 128),
        (dict(TINY_GSWIN, img_size=512), 512, 256, 128),
        (dict(TINY_GSWIN, img_size=128, window_size=4), 128, 16, 128),
        (dict(type='ViT', embed_dim=32, depth=1, num_heads=2), 256, 256, 32),
        (dict(type='ViT', img_size=320, embed_dim=32, depth=1, num_heads=2), 320, 400, 32),
        (dict(type='Swin', embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)), 256, 64, 128),
        (dict(type='Swin', img_size=512, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)), 512, 256, 128),
        (dict(type='GCViT', embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)), 256, 64, 128),
        (dict(type='GCViT', img_size=512, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)), 512, 256, 128),
    ],
)
def test_output_contract(cfg, size, tokens, width):
    model = _build(cfg)
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 1 + tokens, width) and model.out_channels == width


def test_a_configuration_is_the_timm_wrapper_with_its_defaults():
    from rsretrieval.models.backbones.vit import VIT_B16_256

    small = dict(img_size=64, embed_dim=32, depth=1, num_heads=2)
    vit = _build(dict(type='ViT', **small))
    generic = _build(
        dict(type='TimmBackbone', model_name='vit_base_patch16_224', layout='tokens', **{**VIT_B16_256, **small})
    )
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(vit(x), generic(x))
    assert list(vit.state_dict()) == list(generic.state_dict())


@pytest.mark.parametrize(
    'prefix_tokens, global_token',
    [(dict(reg_tokens=2), 'class'), (dict(class_token=False, reg_tokens=1, global_pool='avg'), 'mean')],
    ids=['class-and-registers', 'registers-only'],
)
def test_tokens_layout_keeps_the_class_token_and_drops_registers(prefix_tokens, global_token):
    cfg = dict(type='TimmBackbone', model_name='vit_tiny_patch16_224', layout='tokens', img_size=32, depth=1)
    model = _build(dict(cfg, **prefix_tokens))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats, out = model.model.forward_features(x), model(x)
    patches = feats[:, model.model.num_prefix_tokens :]  # (B, 4, 192)
    assert out.shape == (2, 1 + 4, 192) and torch.equal(out[:, 1:], patches)
    expected = feats[:, 0] if global_token == 'class' else patches.mean(1)
    assert torch.equal(out[:, 0], expected)


def test_feature_map_layouts_put_the_mean_first_then_positions_row_major():
    model = _build(dict(type='TimmBackbone', model_name='convnext_atto', layout='nchw', depths=(1, 1, 1, 1)))
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        feats, out = model.model.forward_features(x), model(x)  # (B, D, 2, 3), (B, 1 + 6, D)
    assert out.shape == (2, 1 + 6, model.out_channels)
    assert torch.equal(out[:, 1 + 4], feats[:, :, 1, 1])  # row 1, column 1
    assert torch.allclose(out[:, 0], feats.mean(dim=(2, 3)), atol=1e-6)


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="layout must be one of .*got 'nhcw'"):
        BACKBONES.build(dict(type='TimmBackbone', model_name='convnext_atto', layout='nhcw'))


def test_invalid_size_states_the_rule():
    with pytest.raises(ValueError, match=r'multiples of patch_size \* window_size \* 2\^\(stages-1\) = 4 \* 8 \* 8'):
        Gswin(img_size=224)
    model = _build(TINY_GSWIN)
    with pytest.raises(ValueError, match='Gswin input 300x300 is invalid'):
        model(torch.randn(1, 3, 300, 300))


def test_paper_size_parameter_count():
    # Depthwise GWG + shared cross-attention: the reading that matches Table VIII (docs/models.md).
    assert _n_params(Gswin()) == pytest.approx(24.25e6, rel=1e-3)


@pytest.mark.parametrize(
    'switch, params',
    [
        (dict(use_global_window=False), 'fewer'),
        (dict(use_shifted_window=False), 'fewer'),
        (dict(share_cross_attn=False), 'more'),
        (dict(gwg_depthwise=False), 'more'),
        (dict(cross_query='local'), 'same'),
        (dict(global_token='first'), 'same'),
    ],
)
def test_switches_change_output_and_parameters(switch, params):
    base, variant = _build(TINY_GSWIN), _build(dict(TINY_GSWIN, **switch))
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        assert not torch.allclose(base(x), variant(x))
    n_base, n_var = _n_params(base), _n_params(variant)
    assert {'fewer': n_var < n_base, 'more': n_var > n_base, 'same': n_var == n_base}[params]


def test_switches_remove_the_intended_modules():
    no_gw = _build(dict(TINY_GSWIN, use_global_window=False))
    assert not any('gwg' in n or 'cross_attn' in n for n, _ in no_gw.named_parameters())
    no_slw = _build(dict(TINY_GSWIN, use_shifted_window=False))
    assert not any('shifted' in n for n, _ in no_slw.named_parameters())
    assert any('cross_attn' in n for n, _ in no_slw.named_parameters())


def test_gradients_reach_gwg_shifted_and_cross_attention():
    model = _build(dict(TINY_GSWIN, share_cross_attn=False)).train()
    model(torch.randn(2, 3, 256, 256)).sum().backward()
    groups = {'gwg': [], 'shifted_attn': [], 'cross_attn.': [], 'cross_attn_shifted': []}
    for name, p in model.named_parameters():
        for key in groups:
            if key in name:
                groups[key].append(p.grad is not None and bool(p.grad.abs().sum() > 0))
    assert all(groups.values()) and all(all(v) for v in groups.values()), groups


def test_window_partition_roundtrip():
    x = torch.randn(2, 16, 24, 5)
    windows = window_partition(x, 8)
    assert windows.shape == (2, 6, 64, 5)
    assert torch.equal(windows[0, 1].view(8, 8, 5), x[0, :8, 8:16])
    assert torch.equal(window_reverse(windows, 8, 16, 24), x)


@pytest.mark.parametrize(('H', 'W', 'ws', 'shift'), [(8, 8, 4, 2), (16, 24, 8, 4), (8, 8, 8, 0)])
def test_shifted_windows_gather_equals_reverse_roll_partition(H, W, ws, shift):
    """The blocks keep their stream in window layout: one gather must equal Swin's roll of the map."""
    x = torch.randn(2, H, W, 5)
    layout = ShiftedWindows.build(H, W, ws, shift, torch.device('cpu'))
    windows = window_partition(x, ws)
    expected = window_partition(torch.roll(x, (-shift, -shift), (1, 2)), ws)
    assert torch.equal(layout.shift(windows), expected)
    assert torch.equal(layout.unshift(expected), windows)
    assert (layout.mask is None) == (shift == 0)
    # its gradient is the inverse gather: the gradient of the roll-based path
    weights = torch.randn_like(expected)
    ours, theirs = (windows.clone().requires_grad_() for _ in range(2))
    (layout.shift(ours) * weights).sum().backward()
    (
        window_partition(torch.roll(window_reverse(theirs, ws, H, W), (-shift, -shift), (1, 2)), ws) * weights
    ).sum().backward()
    assert torch.equal(ours.grad, theirs.grad)


def test_no_token_attends_across_a_shifted_window_boundary():
    """Perturb one token: only tokens of its own region in its shifted window change."""
    torch.manual_seed(0)
    H = W = 8
    ws, shift = 4, 2
    attn = WindowAttention(dim=8, num_heads=2, window_size=ws).eval()
    mask = shifted_window_mask(H, W, ws, shift, torch.device('cpu'))
    x = torch.randn(1, H, W, 8)
    rolled = torch.roll(x, (-shift, -shift), (1, 2))
    # In the rolled map, the last window (bottom-right) mixes four regions of the original map.
    base = attn(window_partition(rolled, ws), mask)
    poked = rolled.clone()
    poked[0, 7, 7] += 10.0  # a token of the wrapped-around corner region
    out = attn(window_partition(poked, ws), mask)
    changed = (out - base).abs().sum(-1)[0]  # (nW, N)
    region = mask[-1, -1] == 0  # tokens of the poked token's region in the last window
    assert changed[-1][region].min() > 1e-4
    assert changed[-1][~region].max() < 1e-6
    assert changed[:-1].max() < 1e-6  # other windows untouched


def test_attention_maps_and_shifted_branch_masking():
    # Two stages: the last stage map (8x8) is twice the window (4), so the last block shifts.
    model = _build(dict(type='Gswin', img_size=64, embed_dim=8, depths=(1, 1), num_heads=(1, 2), window_size=4))
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    maps = model.get_attention_maps()
    assert set(maps) == {'local', 'shifted', 'cross', 'cross_shifted'}
    for value in maps.values():
        assert value.shape == (2, 4, 2, 16, 16)  # (B, nW, heads, N, N)
        assert torch.allclose(value.sum(-1), torch.ones(2, 4, 2, 16))
    mask = shifted_window_mask(8, 8, 4, 2, torch.device('cpu'))  # (nW, N, N)
    blocked = (mask < 0)[None, :, None]
    assert maps['shifted'].masked_select(blocked).max() < 1e-20
    assert maps['cross_shifted'].masked_select(blocked).max() < 1e-20


def test_attention_maps_need_a_forward():
    with pytest.raises(RuntimeError, match='forward pass first'):
        _build(TINY_GSWIN).get_attention_maps()


def test_identical_seeds_identical_outputs():
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(_build(TINY_GSWIN, seed=3)(x), _build(TINY_GSWIN, seed=3)(x))
        assert not torch.equal(_build(TINY_GSWIN, seed=3)(x), _build(TINY_GSWIN, seed=4)(x))


def test_bf16_autocast_forward():
    model = _build(TINY_GSWIN)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(torch.randn(1, 3, 256, 256))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_bf16_inference_on_cpu_attends_by_matmul_and_matches_fp32(monkeypatch):
    calls = []
    sdpa = gswin_module.F.scaled_dot_product_attention
    monkeypatch.setattr(
        gswin_module.F, 'scaled_dot_product_attention', lambda *a, **k: calls.append(1) or sdpa(*a, **k)
    )
    model = _build(dict(TINY_GSWIN, embed_dim=32, num_heads=(2, 2, 4, 4)))
    x = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x)[:, 0]
        assert calls, 'fp32 keeps SDPA'
        calls.clear()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = model(x)[:, 0].float()
    assert not calls, 'bf16 inference on a CPU attends by two matmuls'
    assert torch.nn.functional.cosine_similarity(out, ref).min() > 0.999
    with torch.autocast('cpu', dtype=torch.bfloat16):
        model(x)  # with autograd: SDPA
    assert calls


def test_matmul_attention_equals_sdpa_in_fp32():
    q, k, v = torch.randn(3, 2, 6, 64, 8, generator=torch.Generator().manual_seed(0)).unbind(0)
    bias = torch.randn(1, 6, 64, 64)
    out, attn = gswin_module._attend(q, k, v, bias, keep=True)
    sdpa, none = gswin_module._attend(q, k, v, bias, keep=False)
    assert none is None and attn.shape == (2, 6, 64, 64)
    torch.testing.assert_close(out, sdpa, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    'cfg', [TINY_GSWIN, dict(type='Swin', embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2))]
)
def test_local_checkpoint_loading_reports_keys(tmp_path, cfg):
    src = _build(cfg, seed=0)
    state = src.state_dict() if cfg['type'] == 'Gswin' else src.model.state_dict()
    state = dict(state, extra_key=torch.zeros(1))
    torch.save({'state_dict': state}, tmp_path / 'w.pth')
    dst = _build(dict(cfg, pretrained=str(tmp_path / 'w.pth')), seed=1)
    dst.init_weights()
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.allclose(src(x), dst(x))


def test_partial_checkpoint_is_an_error(tmp_path):
    """A checkpoint that fills only some of the tensors Gswin expects from it is refused
    (it used to load what matched and leave the rest at random init, silently)."""
    from rsretrieval.weights.loading import WeightLoadError

    gswin = _build(TINY_GSWIN)
    donor = {k: torch.full_like(v, 0.5) for k, v in gswin.state_dict().items() if k.startswith('patch_embed')}
    torch.save(donor, tmp_path / 'swin_like.pth')
    target = _build(dict(TINY_GSWIN, pretrained=str(tmp_path / 'swin_like.pth')))
    with pytest.raises(WeightLoadError, match=r"holds 2 tensors .*; \d+ of the model's \d+ tensors missing"):
        target.init_weights()


def test_timm_swin_t_checkpoint_maps_onto_gswin(tmp_path):
    """Swin-T (window 8) weights fill Gswin's shared parts; GWG and cross-attention are new."""
    from rsretrieval.models.backbones.gswin import swin_to_gswin
    from rsretrieval.weights.pretrained import load_weights

    swin = _build(dict(type='Swin', embed_dim=16, num_heads=(1, 2, 2, 4)))
    torch.save(swin.model.state_dict(), tmp_path / 'swin_t.pth')
    gswin = _build(TINY_GSWIN)
    missing, unexpected = load_weights(
        gswin, tmp_path / 'swin_t.pth', convert=swin_to_gswin, new_in_architecture=gswin.new_in_architecture()
    )
    assert torch.equal(gswin.patch_embed.weight, swin.model.patch_embed.proj.weight)
    blocks = swin.model.layers[2].blocks
    g = gswin.stages[2].blocks[1]
    assert torch.equal(g.local_attn.qkv.weight, blocks[2].attn.qkv.weight)
    assert torch.equal(g.shifted_attn.qkv.weight, blocks[3].attn.qkv.weight)
    assert torch.equal(g.mlp.fc1.weight, blocks[3].mlp.fc1.weight)
    assert torch.equal(gswin.stages[0].downsample.reduction.weight, swin.model.layers[1].downsample.reduction.weight)
    assert missing and all(('gwg' in k or 'cross' in k) for k in missing)
    assert unexpected and all('.mlp.' in k or 'norm2' in k or k.startswith('head') for k in unexpected)


@pytest.mark.parametrize(
    'switches',
    [{}, dict(use_shifted_window=False), dict(use_global_window=False)],
    ids=['full', 'no-slw', 'no-gw'],
)
def test_one_residual_stream_keeps_the_scale_at_init(switches):
    # F_GL = F_SL + CA(LN(F_L)) + CA(LN(F_SL)): each block adds to one stream. Adding the stream
    # to itself (the earlier reading) doubled the std at every block (ratio 2.0), and
    # "w/o SLW" then also removed that doubling.
    model = _build(dict(TINY_GSWIN, **switches))
    ratios = []
    for stage in model.stages:
        for block in stage.blocks:
            block.register_forward_hook(lambda m, args, out: ratios.append((out.std() / args[0].std()).item()))
    with torch.no_grad():
        model(torch.randn(2, 3, 256, 256))
    assert len(ratios) == 6
    assert all(0.9 < r < 1.3 for r in ratios), ratios


def test_cross_attention_maps_of_each_branch():
    # One GLW-CA module serves both branches: each branch keeps its own map; only the
    # shifted branch carries Swin's mask.
    model = _build(dict(type='Gswin', img_size=64, embed_dim=8, depths=(1, 1), num_heads=(1, 2), window_size=4))
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    maps = model.get_attention_maps()
    assert not torch.allclose(maps['cross'], maps['cross_shifted'])
    blocked = (shifted_window_mask(8, 8, 4, 2, torch.device('cpu')) < 0)[None, :, None].expand_as(maps['cross'])
    assert maps['cross'].masked_select(blocked).min() > 1e-6  # the unshifted branch is not masked
