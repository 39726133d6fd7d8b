"""The paper's config names its weights: offline with an empty cache it stops in one line
within seconds; fetched once through a (loopback) Hub, it trains offline, and the log says
where every component's initial weights came from."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import REPO
from hub_mirror import sha256

BERT_REPO = 'google-bert/bert-base-uncased'
SWIN_REPO = 'timm/swin_tiny_patch4_window7_224.ms_in1k'


def _run(args: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def test_paper_config_offline_with_an_empty_cache_stops_in_one_line(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HOME=str(tmp_path / 'hf'), RSRETRIEVAL_CACHE=str(tmp_path / 'rs'))
    env.pop('HF_HUB_CACHE', None)
    start = time.perf_counter()
    result = _run([str(REPO / 'tools/train.py'), str(REPO / 'configs/cmpagl_rsicd.py')], env, tmp_path)
    elapsed = time.perf_counter() - start
    assert result.returncode == 1
    assert elapsed < 15, elapsed
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('train.py: error:'), result.stderr
    for name in ('bert-base-uncased', 'swin-t-in1k', 'rsretrieval-weights fetch'):
        assert name in lines[0]
    assert 'Traceback' not in result.stderr + result.stdout
    assert not (tmp_path / 'work_dirs').exists()  # the run never started: no work directory


@pytest.fixture(scope='module')
def tiny_bert_base_layout(tmp_path_factory) -> dict[str, bytes]:
    """A 12-layer BERT of width 32 with bert-base-uncased's files and key layout (the paper
    splits it 6 + 6), the uncased vocabulary of the packaged MiniLM."""
    import torch
    from transformers import BertConfig, BertForPreTraining

    from rsretrieval.weights.pretrained import resolve_pretrained

    config = BertConfig(hidden_size=32, num_hidden_layers=12, num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp('bert12')
    BertForPreTraining(config).save_pretrained(folder)
    files = {name: (folder / name).read_bytes() for name in ('config.json', 'model.safetensors')}
    vocab = resolve_pretrained('minilm-l6')
    files.update(
        {name: (vocab / name).read_bytes() for name in ('vocab.txt', 'tokenizer.json', 'tokenizer_config.json')}
    )
    return files


def test_paper_config_fetched_once_then_trains_offline_with_its_weight_table(
    hub_env, tiny_bert_base_layout, tiny_swin_safetensors, demo_root, tmp_path
):
    hub_env.mirror.repos[BERT_REPO] = tiny_bert_base_layout
    hub_env.mirror.repos[SWIN_REPO] = {'model.safetensors': tiny_swin_safetensors}
    fetched = hub_env.run_cli('fetch', 'bert-base-uncased', 'swin-t-in1k')
    assert fetched.returncode == 0, fetched.stderr
    requests = len(hub_env.mirror.requests)

    env = dict(hub_env.env, HF_HUB_OFFLINE='1')
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    options = [
        f'data_root={demo_root}',
        *(f'{loader}.dataset.ann_file=dataset_demo.json' for loader in loaders),
        *(f'{loader}.num_workers=0' for loader in loaders),
        *(f'{loader}.persistent_workers=False' for loader in loaders),
        'train_dataloader.dataset.indices=16',  # one iteration of the paper's batch of 16
        'model.backbone.embed_dim=24',  # the width of the mirror's Swin-T
        'train_cfg.max_epochs=1',
        'param_scheduler.0.end=1',
    ]
    work_dir = tmp_path / 'work'
    result = _run(
        [str(REPO / 'tools/train.py'), str(REPO / 'configs/cmpagl_ucm.py'), '--work-dir', str(work_dir)]
        + ['--cfg-options', *options],
        env,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(hub_env.mirror.requests) == requests  # nothing asked of the Hub offline
    log = next(work_dir.rglob('*.log')).read_text()
    table = log[log.index('Initial weights of the model:') :]
    bert_sha = sha256(tiny_bert_base_layout['model.safetensors'])
    swin_sha = sha256(tiny_swin_safetensors)
    rows = {line.split()[0]: line for line in table.splitlines()[2:5]}
    assert 'swin-t-in1k' in rows['backbone'] and swin_sha in rows['backbone']
    for component in ('text_encoder', 'fusion_head'):
        assert 'bert-base-uncased' in rows[component] and bert_sha in rows[component]
    assert 'Gswin <- swin-t-in1k' in log and 'relative-position tables' in log
    assert 'starts from random weights' not in log
    assert 'The value is the same before and after' not in log
