"""tools/analysis_tools/check_leaks.py: a config and a folder in, the four files and the list's sha256 out;
bad input in one line."""

import hashlib
import json
import re
import runpy
import sys

import numpy as np
import pytest
from conftest import REPO

from rsretrieval.analysis.leakage_copies import plant_copies

TOOL = str(REPO / 'tools' / 'analysis_tools' / 'check_leaks.py')


def run_tool(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, 'argv', [TOOL, *args])
    runpy.run_path(TOOL, run_name='__main__')


def test_leak_cli_writes_the_results_and_prints_the_exclusion_list_sha256(monkeypatch, capsys, demo_root, tmp_path):
    annotation = json.loads((demo_root / 'dataset_demo.json').read_text())
    train = [im['filename'] for im in annotation['images'] if im['split'] == 'train']
    # a training scene re-encoded into a held-out folder, and a copy of a test scene in a training folder
    plant_copies([str(demo_root / 'images' / train[3])], str(tmp_path / 'bench'), ['jpeg75'])
    test = [im['filename'] for im in annotation['images'] if im['split'] == 'test']
    plant_copies([str(demo_root / 'images' / test[0])], str(tmp_path / 'scraped'), ['png'])
    out = tmp_path / 'out'
    run_tool(
        monkeypatch,
        '--config', f'demo=configs/cmpagl_demo.py,data_root={demo_root}',
        '--folder', f'bench={tmp_path / "bench"}',
        '--folder', f'scraped={tmp_path / "scraped"}:train',
        '--out', str(out), '--workers', '1',
    )  # fmt: skip
    printed = capsys.readouterr().out
    sha256 = re.search(r'exclusion list sha256: ([0-9a-f]{64})', printed).group(1)
    assert sha256 == hashlib.sha256((out / 'exclusions.json').read_bytes()).hexdigest()
    assert 'demo/train: 24 images, training' in printed
    assert f'bench/heldout: 1 image, held out ({tmp_path / "bench"})' in printed
    assert 'pairs at 52 bits or closer: 2' in printed
    entries = json.loads((out / 'exclusions.json').read_text())['entries']
    assert [(e['source'], e['split'], e['filename']) for e in entries] == [
        ('demo', 'train', train[3]),
        ('scraped', 'train', f'{test[0].rsplit(".", 1)[0]}_png.png'),
    ]
    assert sorted(p.name for p in out.iterdir()) == ['exclusions.json', 'pairs.csv', 'pairs.json', 'report.md']


@pytest.mark.parametrize(
    'args, message',
    [
        (['--folder', 'a=/nonexistent/leak/folder'], 'a=/nonexistent/leak/folder: folder not found'),
        (['--config', 'configs/cmpagl_demo.py'], "'configs/cmpagl_demo.py': expected NAME=CONFIG"),
        (['--config', 'c=configs/nope.py', '--folder', 'a=.'], 'c=configs/nope.py: config not found: configs/nope.py'),
    ],
)
def test_leak_cli_bad_input_is_one_line(monkeypatch, capsys, tmp_path, args, message):
    with pytest.raises(SystemExit) as exit_info:
        run_tool(monkeypatch, *args, '--out', str(tmp_path / 'out'))
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if 'error:' in line]
    assert len(errors) == 1 and message in errors[0]
    assert not (tmp_path / 'out').exists()


def test_leak_cli_needs_an_input(monkeypatch, capsys, tmp_path):
    with pytest.raises(SystemExit):
        run_tool(monkeypatch, '--out', str(tmp_path))
    assert 'give at least one --config or --folder' in capsys.readouterr().err


def test_leak_plant_copies_names_each_copy_after_its_source_and_modification(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / 'a.png')
    planted = plant_copies([str(tmp_path / 'a.png')] * 2, str(tmp_path / 'c'), ['half', 'tif'])
    assert {p.rsplit('/', 1)[1] for p in planted} == {'a_half.png', 'a_tif.tif'}
    assert Image.open(tmp_path / 'c' / 'a_half.png').size == (20, 20)
