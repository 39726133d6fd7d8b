import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from rsretrieval.evaluation import save_similarity

REPO = Path(__file__).resolve().parents[2]


def test_rerank_study_writes_the_grid_and_the_plots(tmp_path):
    rng = np.random.default_rng(0)
    n_img = 8
    txt2img = [i // 5 for i in range(5 * n_img)]
    sims = rng.uniform(0, 1, size=(n_img, 5 * n_img)).astype(np.float32)
    sims[txt2img, np.arange(5 * n_img)] += 0.3  # a model better than chance
    img2txt = [list(range(5 * i, 5 * i + 5)) for i in range(n_img)]
    npz = tmp_path / 'sims.npz'
    save_similarity(npz, sims, img2txt, txt2img)
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/rerank_study.py', str(npz), '--topk', '5', '10',
         '--grid', '0.5', '0.7', '0.1', '--out-dir', str(tmp_path / 'study')],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / 'study' / 'rerank_study.csv') as f:
        rows = list(csv.DictReader(f))
    # raw + per K: SMR 3x3, SMR w/o sim 3x3, SMR gamma2=0 3, MR 3x3
    assert len(rows) == 1 + 2 * (9 + 9 + 3 + 9)
    assert {r['method'] for r in rows} == {'raw', 'SMR', 'SMR w/o sim', 'SMR gamma2=0', 'MR'}
    assert all(0 <= float(r['mR']) <= 100 for r in rows)
    for name in ('fig6a_K5.png', 'fig6b_K5.png', 'fig6a_K10.png', 'fig6b_K10.png'):
        with Image.open(tmp_path / 'study' / name) as im:
            assert im.size == (840, 540)
    assert 'best SMR' in proc.stdout and 'paper default' not in proc.stdout  # (0.9, 1.9) is not in this grid
