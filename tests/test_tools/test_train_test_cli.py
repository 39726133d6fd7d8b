"""The command-line tools, run as a user would (subprocess)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from helpers import TINY_DEMO_OPTIONS

from rsretrieval.evaluation import load_similarity, recall_at_k

TINY = TINY_DEMO_OPTIONS


def _run(*args):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_make_demo_then_train_and_test(tmp_path):
    data_root = tmp_path / 'scenes'
    _run('tools/misc/make_demo_dataset.py', str(data_root), '--num-train', '16', '--num-val', '4', '--num-test', '6',
         '--image-size', '32')  # fmt: skip
    assert json.loads((data_root / 'dataset_demo.json').read_text())['images'][0]['split'] == 'train'
    work = tmp_path / 'work'
    # The demo config's generator settings do not matter: the folder exists already.
    out = _run('tools/train.py', 'configs/cmpagl_demo.py', '--work-dir', str(work), '--cfg-options',
               f'data_root={data_root}', *TINY)  # fmt: skip
    assert 'val retrieval results (4 images, 20 captions)' in out
    ckpt = (work / 'last_checkpoint').read_text().strip()
    npz = tmp_path / 'sims.npz'
    out = _run('tools/test.py', 'configs/cmpagl_demo.py', ckpt, '--work-dir', str(work), '--out', str(npz),
               '--cfg-options', f'data_root={data_root}', *TINY)  # fmt: skip
    assert 'test retrieval results (6 images, 30 captions)' in out and '| chance |' in out
    saved = load_similarity(npz)
    assert saved['sims'].shape == (6, 30) and len(saved['captions']) == 30
    metrics = recall_at_k(saved['sims'], saved['sims'], saved['img2txt'], saved['txt2img'])
    assert f'{metrics["mR"]:.2f}' in out
    assert np.isfinite(saved['sims']).all()
    # without --out nor a reranker the matrix is not built: ranked block by block, same numbers
    out = _run('tools/test.py', 'configs/cmpagl_demo.py', ckpt, '--work-dir', str(work),
               '--cfg-options', f'data_root={data_root}', *TINY)  # fmt: skip
    assert f'| test | {metrics["i2t_R@1"]:.2f} | {metrics["i2t_R@5"]:.2f}' in out and f'{metrics["mR"]:.2f}' in out
    out = _run('tools/test.py', 'configs/cmpagl_demo.py', ckpt, '--work-dir', str(work), '--rerank', 'smr',
               '--rerank-options', 'topk=5', 'gamma2=1.5',
               '--cfg-options', f'data_root={data_root}', *TINY)  # fmt: skip
    assert '| test (raw) |' in out and '| test + SMR |' in out
    # evaluated from SMR's candidates (above) or from its reranked matrices (--out): the same row
    dense = _run('tools/test.py', 'configs/cmpagl_demo.py', ckpt, '--work-dir', str(work), '--rerank', 'smr',
                 '--rerank-options', 'topk=5', 'gamma2=1.5', '--out', str(tmp_path / 'smr.npz'),
                 '--cfg-options', f'data_root={data_root}', *TINY)  # fmt: skip
    row = next(line for line in out.splitlines() if '| test + SMR |' in line)
    assert row.split('| test + SMR |')[1] in dense


def test_test_tool_refuses_a_checkpoint_of_another_model(tmp_path, demo_root):
    import torch

    bad = tmp_path / 'other.pth'
    torch.save({'state_dict': {'backbone.unrelated.weight': torch.zeros(1)}, 'meta': {}}, bad)
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', 'configs/cmpagl_demo.py', str(bad), '--work-dir', str(tmp_path),
         '--cfg-options', f'data_root={demo_root}', *TINY],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode != 0
    # One line that names the file, the missing keys and the unexpected one; no traceback.
    assert str(bad) in proc.stderr and 'does not fit' in proc.stderr
    assert '1 unexpected (backbone.unrelated.weight)' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_run_seeds_trains_tests_and_aggregates(tmp_path, demo_root):
    import torch

    work = tmp_path / 'seeds'
    args = ['tools/misc/run_seeds.py', 'configs/cmpagl_demo.py', '--seeds', '3', '7', '--work-dir', str(work),
            '--rerank', 'smr', '--rerank-options', 'topk=5',
            '--cfg-options', f'data_root={demo_root}', *TINY]  # fmt: skip
    out = _run(*args)
    per_seed = {s: json.loads((work / f'seed_{s}' / 'test_metrics.json').read_text()) for s in (3, 7)}
    assert {'mR', 'raw/mR', 'i2t_R@1', 'raw/t2i_R@10'} <= set(per_seed[3])
    summary = json.loads((work / 'seeds.json').read_text())
    mean = (per_seed[3]['mR'] + per_seed[7]['mR']) / 2
    std = abs(per_seed[3]['mR'] - per_seed[7]['mR']) / 2**0.5  # sample std of two values
    assert summary['mean']['mR'] == pytest.approx(mean) and summary['std']['mR'] == pytest.approx(std)
    table = (work / 'seeds.md').read_text()
    assert '| metric | seed 3 | seed 7 | mean ± std |' in table
    assert f'| mR | {per_seed[3]["mR"]:.2f} | {per_seed[7]["mR"]:.2f} | {mean:.2f} ± {std:.2f} |' in table
    assert table.strip() in out
    # the seed reached the runs: the two trainings ended with different weights
    weights = [
        torch.load(next((work / f'seed_{s}').glob('best_*.pth')), map_location='cpu', weights_only=False)['state_dict']
        for s in (3, 7)
    ]
    assert not torch.equal(weights[0]['image_proj.weight'], weights[1]['image_proj.weight'])
    # a second call reuses the finished seeds
    assert out.count('+ ') >= 4 and 'reusing' in _run(*args)


def test_seed_aggregation_is_checked():
    from rsretrieval.evaluation import aggregate_seeds

    assert aggregate_seeds({0: {'mR': 10.0}}) == {'mR': (10.0, 0.0)}
    with pytest.raises(ValueError, match='seed 1 reports other metrics'):
        aggregate_seeds({0: {'mR': 1.0}, 1: {'R@1': 1.0}})
