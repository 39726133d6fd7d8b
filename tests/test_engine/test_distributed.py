"""Two processes (gloo, CPU) train and evaluate; the metrics equal one process's."""

import os
import subprocess
import sys

import numpy as np
from conftest import REPO
from helpers import TINY_DEMO_OPTIONS

from rsretrieval.datasets import make_demo_dataset
from rsretrieval.evaluation import load_similarity, recall_at_k


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(cmd, **env):
    full_env = {**os.environ, 'OMP_NUM_THREADS': '1', **env}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=full_env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def test_two_gloo_processes_train_and_evaluate_like_one(tmp_path):
    # 7 test images / 35 captions: 2 processes split them unevenly and the sampler pads
    data_root = make_demo_dataset(tmp_path / 'scenes', 20, 5, 7, image_size=32, seed=3)
    opts = ['--cfg-options', f'data_root={data_root}', *TINY_DEMO_OPTIONS]
    work = tmp_path / 'work'
    out = _run(['bash', 'tools/dist_train.sh', 'configs/cmpagl_demo.py', '2', '--work-dir', str(work), *opts],
               PORT=str(_free_port()), PYTHON=sys.executable)  # fmt: skip
    assert 'val retrieval results (5 images, 25 captions)' in out
    assert "backend='gloo'" in out and 'Distributed training: True' in out
    ckpt = (work / 'last_checkpoint').read_text().strip()

    dist_npz, single_npz = tmp_path / 'dist.npz', tmp_path / 'single.npz'
    _run(['bash', 'tools/dist_test.sh', 'configs/cmpagl_demo.py', ckpt, '2', '--work-dir', str(work),
          '--out', str(dist_npz), *opts], PORT=str(_free_port()), PYTHON=sys.executable)  # fmt: skip
    _run([sys.executable, 'tools/test.py', 'configs/cmpagl_demo.py', ckpt, '--work-dir', str(work),
          '--out', str(single_npz), *opts])  # fmt: skip
    dist, single = load_similarity(dist_npz), load_similarity(single_npz)
    assert dist['sims'].shape == single['sims'].shape == (7, 35)
    # every image and caption placed once, at its own index: the matrices agree entry by entry
    np.testing.assert_allclose(dist['sims'], single['sims'], rtol=1e-5, atol=1e-6)
    assert dist['captions'] == single['captions'] and dist['image_paths'] == single['image_paths']
    m_dist = recall_at_k(dist['sims'], dist['sims'], dist['img2txt'], dist['txt2img'])
    m_single = recall_at_k(single['sims'], single['sims'], single['img2txt'], single['txt2img'])
    assert m_dist == m_single
