"""Two "nodes" on one machine: two torchrun launches meeting through c10d rendezvous on
127.0.0.1 (one of them late) train, and evaluate to the same similarities as one process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
from conftest import REPO
from helpers import TINY_DEMO_OPTIONS

from rsretrieval.datasets import make_demo_dataset
from rsretrieval.evaluation import load_similarity, recall_at_k

LATE_BY_S = 8  # the second node joins this much later than the first


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _two_nodes(command: list[str], rdzv_id: str) -> list[str]:
    """Start ``command`` as two nodes of one process each, the second late; their outputs."""
    env = dict(
        os.environ,
        NNODES='2',
        MASTER_ADDR='127.0.0.1',
        PORT=str(_free_port()),
        RDZV_ID=rdzv_id,
        PYTHON=sys.executable,
        OMP_NUM_THREADS='1',
        MAX_RESTARTS='0',
    )
    nodes = []
    for i in range(2):
        if i:
            time.sleep(LATE_BY_S)
        nodes.append(
            subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    outputs = []
    for node in nodes:
        out, _ = node.communicate(timeout=600)
        assert node.returncode == 0, out[-4000:]
        outputs.append(out)
    return outputs


def test_rendezvous_of_two_nodes_one_late_trains_and_evaluates_like_one_process(tmp_path):
    data_root = make_demo_dataset(tmp_path / 'scenes', 20, 5, 7, image_size=32, seed=3)
    opts = ['--cfg-options', f'data_root={data_root}', *TINY_DEMO_OPTIONS]
    work = tmp_path / 'work'
    train = ['bash', 'tools/dist_train.sh', 'configs/cmpagl_demo.py', '1', '--work-dir', str(work), *opts]
    logs = '\n'.join(_two_nodes(train, 'rendezvous-train'))
    assert 'Distributed training: True' in logs and "backend='gloo'" in logs
    ckpt = (work / 'last_checkpoint').read_text().strip()

    dist_npz, single_npz = tmp_path / 'dist.npz', tmp_path / 'single.npz'
    test = ['bash', 'tools/dist_test.sh', 'configs/cmpagl_demo.py', ckpt, '1', '--work-dir', str(work),
            '--out', str(dist_npz), *opts]  # fmt: skip
    _two_nodes(test, 'rendezvous-test')
    single = subprocess.run(
        [sys.executable, 'tools/test.py', 'configs/cmpagl_demo.py', ckpt, '--work-dir', str(work),
         '--out', str(single_npz), *opts],
        cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    dist, one = load_similarity(dist_npz), load_similarity(single_npz)
    assert dist['sims'].shape == one['sims'].shape == (7, 35)
    np.testing.assert_allclose(dist['sims'], one['sims'], rtol=1e-5, atol=1e-6)
    assert recall_at_k(dist['sims'], dist['sims'], dist['img2txt'], dist['txt2img']) == recall_at_k(
        one['sims'], one['sims'], one['img2txt'], one['txt2img']
    )
