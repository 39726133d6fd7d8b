"""The model zoo file and the ``rsretrieval-weights`` command (list, fetch, verify) through the mirror."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hub_mirror import REPO, sha256

from rsretrieval.weights.sources import parse_source
from rsretrieval.weights.zoo import ZooError, load_zoo, read_zoo_file

SWIN_REPO = 'timm/swin_tiny_patch4_window7_224.ms_in1k'
ENTRY = """
  - name: {name}
    source: {source}
    initialises: test
    licence: MIT
    homepage: https://example.org
    params: 10
"""


def write_zoo(path, *entries: str, extra: str = '') -> str:
    path.write_text('weights:' + ''.join(entries) + extra)
    return str(path)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith('rsretrieval-weights: error:')]


# ------------------------------------------------------------------------------ zoo
def test_zoo_loads_entries_with_licence_and_source():
    zoo = load_zoo()
    assert len(zoo) >= 8
    for entry in zoo.values():
        assert entry.licence and entry.source and entry.homepage.startswith('https://') and entry.params > 0
        parse_source(entry.source)
    assert zoo['bert-base-uncased'].files == (
        'config.json',
        'vocab.txt',
        'tokenizer.json',
        'tokenizer_config.json',
        'model.safetensors',
    )
    assert zoo['swin-t-in1k'].source == f'hf-hub:{SWIN_REPO}:model.safetensors'
    assert 'NC' in zoo['gcvit-xxt-in1k'].licence and zoo['gcvit-xxt-in1k'].sha256 == 'd1d86009'
    assert {zoo[n].arch for n in ('remoteclip-rn50', 'remoteclip-vit-b-32', 'georsclip-vit-h-14')} == {
        'RN50',
        'ViT-B-32',
        'ViT-H-14',
    }
    assert zoo['minilm-l6'].source == 'minilm-l6'
    assert zoo['georsclip-vit-h-14'].approx_fp32_bytes == 4 * zoo['georsclip-vit-h-14'].params


@pytest.mark.parametrize(
    ('body', 'message'),
    [
        (ENTRY.format(name='a', source='hf-hub:o/n') + '    colour: red\n', "entry 'a': unknown field(s) colour"),
        ('\n  - name: b\n    source: hf-hub:o/n\n', "entry 'b': missing field(s) initialises, licence"),
        ('\n  - source: hf-hub:o/n\n', 'entry #1: missing field(s) name'),
        (ENTRY.format(name='c', source='hf-hub:o/n').replace('10', 'ten'), "entry 'c': params must be"),
        (ENTRY.format(name='d', source='hf-hub:nope'), "entry 'd': source: bad weight spec"),
        (ENTRY.format(name='e', source='hf-hub:o/n:f.pt') + '    files: [a.json]\n', "entry 'e': files only"),
        (ENTRY.format(name='f', source='https://x.org/f.pt') + '    sha256: xyz\n', "entry 'f': sha256 must"),
        (ENTRY.format(name='g', source='p') * 2, "entry 'g' is listed twice"),
        (ENTRY.format(name='h/i', source='p'), "entry 'h/i': name must be"),
    ],
)
def test_zoo_schema_errors_name_the_entry(tmp_path, body, message):
    path = write_zoo(tmp_path / 'zoo.yml', body)
    with pytest.raises(ZooError) as info:
        read_zoo_file(path)
    assert message in str(info.value) and path in str(info.value)


def test_user_zoo_merges_over_packaged(tmp_path, monkeypatch):
    path = write_zoo(
        tmp_path / 'lab.yml',
        ENTRY.format(name='swin-t-in1k', source='/lab/weights/swin.pth'),
        ENTRY.format(name='lab-model', source='hf-hub:lab/model'),
    )
    monkeypatch.setenv('RSRETRIEVAL_ZOO', path)
    zoo = load_zoo()
    assert zoo['swin-t-in1k'].source == '/lab/weights/swin.pth' and zoo['lab-model'].origin == path
    assert 'bert-base-uncased' in zoo
    monkeypatch.setenv('RSRETRIEVAL_ZOO', str(tmp_path / 'missing.yml'))
    with pytest.raises(ZooError, match=r'missing\.yml \(from \$RSRETRIEVAL_ZOO\)'):
        load_zoo()


# ------------------------------------------------------------------------------ CLI
def test_cli_list_prints_the_zoo_without_torch(hub_env):
    code = 'import sys; from rsretrieval.weights.cli import main; main(["list"]); assert "torch" not in sys.modules'
    result = subprocess.run(
        [sys.executable, '-c', code],
        env={**hub_env.env, 'HF_HUB_OFFLINE': '1'},
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:4] == ['NAME', 'INITIALISES', 'SOURCE', 'LICENCE'] and 'CACHED' in header
    names = {row.split()[0] for row in rows}
    assert set(load_zoo()) <= names
    minilm = next(row for row in rows if row.startswith('minilm-l6 '))
    assert minilm.endswith('yes') and '22.7M (~90.9 MB)' in minilm
    assert next(row for row in rows if row.startswith('swin-t-in1k ')).endswith('no')
    assert 'parameters x 4 bytes' in rows[-1]


def test_cli_fetch_through_mirror_then_offline(hub_env, tiny_swin_safetensors, tiny_bert_files):
    hub_env.mirror.repos[SWIN_REPO] = {'model.safetensors': tiny_swin_safetensors}
    hub_env.mirror.repos['google-bert/bert-base-uncased'] = {**tiny_bert_files, 'tf_model.h5': b'h5'}
    first = hub_env.run_cli('fetch', 'swin-t-in1k', 'bert-base-uncased')
    assert first.returncode == 0, first.stderr
    swin, bert = first.stdout.splitlines()
    assert swin.startswith('swin-t-in1k: ') and swin.endswith(f'sha256={sha256(tiny_swin_safetensors)}')
    path = swin.split(': ', 1)[1].split(' sha256=')[0]
    assert open(path, 'rb').read() == tiny_swin_safetensors
    assert bert.endswith(f'sha256={sha256(tiny_bert_files["model.safetensors"])}')

    requests = len(hub_env.mirror.requests)
    second = hub_env.run_cli('fetch', 'swin-t-in1k', 'bert-base-uncased', offline=True)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert len(hub_env.mirror.requests) == requests


def test_cli_fetch_failure_is_one_line_exit_1(hub_env):
    result = hub_env.run_cli('fetch', 'hf-hub:nobody/none:x.bin', 'minilm-l6')
    assert result.returncode == 1
    assert result.stdout.startswith('minilm-l6: ')  # the others are still fetched
    [line] = error_lines(result)
    assert 'Hub repo nobody/none does not exist' in line

    offline = hub_env.run_cli('fetch', 'swin-t-in1k', offline=True)
    assert offline.returncode == 1
    assert '`rsretrieval-weights fetch swin-t-in1k`' in error_lines(offline)[0]

    usage = hub_env.run_cli('fetch')
    assert usage.returncode == 2 and 'or give --all' in error_lines(usage)[0]


def test_cli_verify_ok_mismatch_and_not_cached(hub_env, tiny_swin_safetensors):
    hub_env.mirror.repos[SWIN_REPO] = {'model.safetensors': tiny_swin_safetensors}
    assert hub_env.run_cli('fetch', 'swin-t-in1k').returncode == 0
    ok = hub_env.run_cli('verify', 'swin-t-in1k', 'vit-b16-in1k', 'minilm-l6')
    assert ok.returncode == 0, ok.stderr
    swin, vit, minilm = ok.stdout.splitlines()
    assert swin.startswith('swin-t-in1k: OK ') and vit == 'vit-b16-in1k: NOT CACHED'
    assert minilm.startswith('minilm-l6: UNCHECKED ')

    blob = hub_env.hub_cache / f'models--{SWIN_REPO.replace("/", "--")}' / 'blobs' / sha256(tiny_swin_safetensors)
    os.chmod(blob, 0o644)
    blob.write_bytes(b'tampered')
    bad = hub_env.run_cli('verify', 'swin-t-in1k')
    assert bad.returncode == 1 and bad.stdout.startswith('swin-t-in1k: MISMATCH ')
    assert 'fetch again' in error_lines(bad)[0]


def test_cli_python_m_without_runpy_warning(hub_env):
    command = [sys.executable, '-W', 'error::RuntimeWarning', '-m', 'rsretrieval.weights.cli', '--help']
    result = subprocess.run(command, env=hub_env.env, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in ('list', 'fetch', 'verify'))
    none = hub_env.run_cli()
    assert none.returncode == 2 and 'choose a command' in error_lines(none)[0]
