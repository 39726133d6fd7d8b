"""Fixtures for weight tests: a loopback Hub mirror and tiny real-layout weights.

- ``hub_mirror``: a running :class:`hub_mirror.HubMirror` (empty; add repos with
  ``mirror.repos['org/name'] = {path: bytes}`` and URL files with
  ``mirror.url_files[name] = bytes``). The environment is left alone.
- ``hub_env``: the mirror plus this process pointed at it (``HF_ENDPOINT``,
  ``HF_HOME``, ``HF_HUB_CACHE``, ``RSRETRIEVAL_CACHE`` under ``tmp_path``;
  offline switches cleared, including huggingface_hub's import-time
  ``constants.HF_HUB_OFFLINE``); yields a :class:`hub_mirror.HubEnv` whose
  ``env``/``run_cli`` serve subprocesses.
- ``tiny_bert_files``: ``{file name: bytes}`` of a 2-layer, width-32 BERT folder
  (BertForPreTraining keys, as bert-base-uncased has) with the packaged MiniLM's
  uncased tokenizer files.
- ``tiny_swin_safetensors``: bytes of a timm Swin-T state dict at width 24 (the
  real key layout: depths 2-2-6-2, window 7), as ``model.safetensors``.
- ``no_sleep``: huggingface_hub's retry back-off without the waiting.

The root conftest loads this module as a plugin, so every test folder has the
fixtures; the helpers are importable as ``from hub_mirror import HubMirror, mirror_env``.
"""

from __future__ import annotations

import pytest
from hub_mirror import CLEARED_VARS, HubEnv, HubMirror, mirror_env, subprocess_env


@pytest.fixture
def hub_mirror():
    """A running, empty loopback Hub mirror."""
    with HubMirror() as mirror:
        yield mirror


@pytest.fixture
def hub_env(hub_mirror, tmp_path, monkeypatch) -> HubEnv:
    """The mirror with this process (and ``HubEnv.env`` for subprocesses) pointed at it."""
    import huggingface_hub.constants

    for var in CLEARED_VARS:
        monkeypatch.delenv(var, raising=False)
    for key, value in mirror_env(hub_mirror, tmp_path).items():
        monkeypatch.setenv(key, value)
    # huggingface_hub read HF_HUB_OFFLINE at import (the root conftest sets it): switch it off for this test.
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', False)
    return HubEnv(mirror=hub_mirror, root=tmp_path, env=subprocess_env(hub_mirror, tmp_path))


@pytest.fixture
def no_sleep(monkeypatch):
    """huggingface_hub retries (connection errors, cut downloads) after sleeping 1-8 s: skip the sleeps."""
    import time

    monkeypatch.setattr(time, 'sleep', lambda seconds: None)


@pytest.fixture(scope='session')
def tiny_bert_files(tmp_path_factory) -> dict[str, bytes]:
    """A tiny BERT folder as ``{file name: bytes}`` (config, safetensors, uncased tokenizer files)."""
    import torch
    from transformers import BertConfig, BertForPreTraining

    from rsretrieval.weights.pretrained import resolve_pretrained

    tokenizer_folder = resolve_pretrained('minilm-l6')
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp('tiny_bert')
    BertForPreTraining(config).save_pretrained(folder)
    files = {name: (folder / name).read_bytes() for name in ('config.json', 'model.safetensors')}
    for name in ('vocab.txt', 'tokenizer.json', 'tokenizer_config.json'):
        files[name] = (tokenizer_folder / name).read_bytes()
    return files


@pytest.fixture(scope='session')
def tiny_swin_safetensors() -> bytes:
    """A width-24 timm Swin-T state dict (real key layout) serialised as safetensors."""
    import timm
    import torch
    from safetensors.torch import save

    torch.manual_seed(0)
    model = timm.create_model('swin_tiny_patch4_window7_224', pretrained=False, embed_dim=24)
    return save({k: v.contiguous() for k, v in model.state_dict().items()})
