import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rsretrieval.analysis import rerank_study_figures
from rsretrieval.analysis.rerank_study import grid_values, paper_default_rows, rows_at, run_study
from rsretrieval.evaluation import recall_at_k, save_similarity
from rsretrieval.rerankers import MR, SMR

REPO = Path(__file__).resolve().parents[2]


def _tiny_study_inputs(n_img=8):
    rng = np.random.default_rng(0)
    txt2img = [i // 5 for i in range(5 * n_img)]
    sims = rng.uniform(0, 1, size=(n_img, 5 * n_img)).astype(np.float32)
    sims[txt2img, np.arange(5 * n_img)] += 0.3  # a model better than chance
    img2txt = [list(range(5 * i, 5 * i + 5)) for i in range(n_img)]
    return sims, img2txt, txt2img


@pytest.mark.parametrize('figure', ['fig6a', 'fig6b'])
def test_legend_is_outside_the_axes(figure):
    sims, img2txt, txt2img = _tiny_study_inputs()
    rows, raw = run_study(sims, img2txt, txt2img, [5], grid_values(0.5, 2.0, 0.5))
    fig = getattr(rerank_study_figures, figure)(rows, raw, 5)
    fig.draw_without_rendering()  # runs the constrained layout
    (ax,) = fig.axes
    legend = ax.get_legend()
    assert legend is not None and 'no rerank' in [t.get_text() for t in legend.get_texts()]
    axes_box, legend_box = ax.get_window_extent(), legend.get_window_extent()
    assert legend_box.x0 >= axes_box.x1  # right of the axes: clear of the curves' ends and the raw line
    assert legend_box.x1 <= fig.bbox.x1 and legend_box.y0 >= fig.bbox.y0  # and not cut off


def test_rerank_study_writes_the_grid_and_the_plots(tmp_path):
    sims, img2txt, txt2img = _tiny_study_inputs()
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
            assert im.size == (1080, 540)  # 9 x 4.5 in at 120 dpi
    assert 'best SMR' in proc.stdout
    off_grid = [line for line in proc.stdout.splitlines() if line.startswith('paper default')]
    assert [line.split(':')[0] for line in off_grid] == [
        'paper default SMR K=5 (0.9, 1.9)', 'paper default MR K=5 (1, 0.7)',
        'paper default SMR K=10 (0.9, 1.9)', 'paper default MR K=10 (1, 0.7)',
    ]  # fmt: skip
    assert all(line.endswith('(off the grid, evaluated on its own)') for line in off_grid)  # 0.5..0.7 holds neither


@pytest.mark.parametrize(
    ('method', 'p2', 'reranker'),
    [
        ('SMR', 1.5, SMR(topk=5, gamma1=0.7, gamma2=1.5)),
        ('SMR w/o sim', 1.5, SMR(topk=5, gamma1=0.7, gamma2=1.5, multiply_sim=False)),
        ('SMR gamma2=0', 0.0, SMR(topk=5, gamma1=0.7, gamma2=0.0)),
        ('MR', 1.5, MR(topk=5, wp1=0.7, wp2=1.5, min_candidates=1)),
    ],
)
def test_a_study_row_is_the_recall_of_that_reranker_on_its_own(method, p2, reranker):
    sims, img2txt, txt2img = _tiny_study_inputs()
    rows, _ = run_study(sims, img2txt, txt2img, [5], [0.5, 0.7, 1.5])
    (row,) = rows_at(rows, method, 0.7, p2)
    i2t, t2i = reranker(torch.as_tensor(sims))
    expected = recall_at_k(i2t, t2i, img2txt, txt2img)
    assert {key: row[key] for key in expected} == expected


def test_the_paper_defaults_are_evaluated_on_the_grid_or_off_it():
    sims, img2txt, txt2img = _tiny_study_inputs()
    for grid, on_grid in ((grid_values(0.5, 2.0, 0.1), True), (grid_values(0.5, 2.0, 0.5), False)):
        rows, _ = run_study(sims, img2txt, txt2img, [5], grid)
        smr, mr = paper_default_rows(sims, img2txt, txt2img, [5], rows)
        assert [(r['method'], r['p1'], r['p2']) for r in (smr, mr)] == [('SMR', 0.9, 1.9), ('MR', 1.0, 0.7)]
        assert smr['on_grid'] is on_grid and mr['on_grid'] is on_grid
        for row, reranker in (
            (smr, SMR(topk=5, gamma1=0.9, gamma2=1.9)),
            (mr, MR(topk=5, wp1=1.0, wp2=0.7, min_candidates=1)),
        ):
            i2t, t2i = reranker(torch.as_tensor(sims))
            expected = recall_at_k(i2t, t2i, img2txt, txt2img)
            assert {key: row[key] for key in expected} == expected
            if on_grid:  # the same number the grid holds
                (grid_row,) = rows_at(rows, row['method'], row['p1'], row['p2'])
                assert grid_row['mR'] == row['mR']
