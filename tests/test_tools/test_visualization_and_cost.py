"""The figure tools (paper Fig. 7 and 8) and the cost report (Table VIII), end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

from rsretrieval.evaluation import load_similarity
from rsretrieval.registry import BACKBONES
from rsretrieval.visualization import BRANCHES, attention_figure, attention_heatmaps, overlay
from rsretrieval.visualization.retrieval_grid import GREEN, RED

CONFIG = 'configs/cmpagl_demo.py'


def _run(*args):
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_attention_heatmaps_put_windows_back_in_place():
    # last stage 8x8 with window 4: four windows, and the shifted branch rolled by 2
    torch.manual_seed(0)
    net = BACKBONES.build(
        dict(type='Gswin', img_size=64, patch_size=4, embed_dim=8, depths=(1, 1), num_heads=(1, 2), window_size=4)
    ).eval()
    with torch.no_grad():
        net(torch.randn(2, 3, 64, 64))
    heat = attention_heatmaps(net, (64, 64))
    assert set(heat) == {'local', 'shifted', 'cross', 'cross_shifted'}
    for name, grid in heat.items():
        assert grid.shape == (2, 8, 8)
        s = 2 if 'shifted' in name else 0
        rolled = torch.roll(grid, (-s, -s), (1, 2))  # the windows the branch attended in
        per_window = rolled.view(2, 2, 4, 2, 4).sum(dim=(2, 4))  # each window's keys share one unit
        assert torch.allclose(per_window, torch.ones(2, 2, 2), atol=1e-5), name
    image = np.full((64, 64, 3), 128, np.uint8)
    blended = overlay(image, heat['local'][0])
    assert blended.shape == (64, 64, 3) and blended.dtype == np.uint8 and not np.array_equal(blended, image)


def _figure_size(h, w, branches):
    """Pixel size of the Fig. 7 figure of an ``h x w`` image (only the layout matters)."""
    fig = attention_figure(np.zeros((h, w, 3), np.uint8), {b: np.zeros((2, 2)) for b in branches})
    return tuple(int(round(v)) for v in fig.get_size_inches() * fig.dpi)


def test_attention_map_tool_writes_one_panel_per_branch(tmp_path, demo_root, tiny_demo_checkpoint):
    ckpt, cli = tiny_demo_checkpoint
    demo = sorted((demo_root / 'images').glob('*.png'))[0]
    wide = tmp_path / 'wide.png'  # a source image larger than the 32 px model input, not square
    Image.open(demo).convert('RGB').resize((200, 150)).save(wide)
    out = _run('tools/visualization/attention_map.py', CONFIG, ckpt, demo, wide, '--out-dir', tmp_path, *cli)
    assert 'image | local | shifted | cross | cross_shifted (200 x 150 px)' in out
    for path, (h, w) in ((demo, (32, 32)), (wide, (150, 200))):
        with Image.open(tmp_path / f'{path.stem}_attention.png') as png:
            assert png.size == _figure_size(h, w, BRANCHES)  # panels at the source image's size
    assert _figure_size(150, 200, BRANCHES) != _figure_size(32, 32, BRANCHES)
    out = _run('tools/visualization/attention_map.py', CONFIG, ckpt, wide, '--out-dir', tmp_path / 'one',
               '--branches', 'cross', *cli)  # fmt: skip
    with Image.open(tmp_path / 'one' / 'wide_attention.png') as png:
        assert png.size == _figure_size(150, 200, ['cross'])


def test_retrieval_results_tool_frames_matches_green(tmp_path, tiny_demo_checkpoint):
    """Frames green or red; each tile's rank and score, and the ground truth's rank when
    outside the top K, are printed as drawn (the drawing itself: tests/test_visualization)."""
    ckpt, cli = tiny_demo_checkpoint
    sims_file = tmp_path / 'sims.npz'
    _run('tools/test.py', CONFIG, ckpt, '--work-dir', tmp_path / 'work', '--out', sims_file, *cli)
    data = load_similarity(sims_file)
    queries, topk = [0, 7, 12], 3
    png = tmp_path / 'fig8.png'
    out = _run('tools/visualization/retrieval_results.py', sims_file, '--queries', *queries, '--topk', topk,
               '--out', png)  # fmt: skip
    lines = out.splitlines()
    assert 0 < sum('ground truth at rank' in line for line in lines) < len(queries)  # both cases occur
    with Image.open(png) as image:
        assert image.size == (topk * 160, len(queries) * (40 + 160))
        pixels = image.convert('RGB').load()
        for row, q in enumerate(queries):
            order = np.argsort(-data['sims'][:, q], kind='stable')[:topk]
            for col, i in enumerate(order):
                frame = pixels[col * 160 + 2, row * 200 + 40 + 80]  # the left frame bar of the tile
                assert frame == (GREEN if i == data['txt2img'][q] else RED)
                assert f'#{col + 1}  {data["sims"][i, q]:.3f}' in lines[row]
            gt_rank = int(np.flatnonzero(np.argsort(-data['sims'][:, q], kind='stable') == data['txt2img'][q])[0]) + 1
            assert (f'ground truth at rank {gt_rank}' in lines[row]) == (gt_rank > topk), lines[row]
    proc = subprocess.run(
        [sys.executable, 'tools/visualization/retrieval_results.py', str(sims_file), '--queries', '999'],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0 and 'outside [0, 40)' in proc.stderr


def test_complexity_report(tmp_path, tiny_demo_checkpoint):
    ckpt, cli = tiny_demo_checkpoint
    report_file = tmp_path / 'cost.json'
    out = _run('tools/analysis_tools/complexity.py', CONFIG, '--checkpoint', ckpt, '--sets', 'sydney', 'ucm',
               '--repeats', '3', '--json', report_file, *cli)  # fmt: skip
    report = json.loads(report_file.read_text())
    params = report['parameters']
    assert 0 < params['inference'] < params['total']
    assert sum(params['per_module'].values()) == params['total']
    assert report['flops']['image'] > 0 and report['flops']['text'] > 0
    for name in ('sydney', 'ucm'):
        t = report['evaluation_s'][name]
        assert t['total'] == pytest.approx(t['images'] + t['captions'] + t['similarity'])
    assert 0 < report['inference_s_per_pair'] < 10
    assert 'at inference' in out and 'ms per image-caption pair' in out
