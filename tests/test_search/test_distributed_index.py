"""``index`` under several processes: the split, the merge, and two gloo processes against one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

from rsretrieval.apis import init_model, iter_image_embeddings
from rsretrieval.search import ArchiveIndex, find_images
from rsretrieval.search.archive_index import ArchiveIndexError
from rsretrieval.search.distributed_index import (
    Launch,
    LaunchError,
    RankFailure,
    RankGroup,
    detect_launch,
    merge_parts,
    part_folder,
    part_folders,
    part_paths,
    rank_device,
    split_blocks,
)

CONFIG = str(REPO / 'configs' / 'cmpagl_demo.py')
MODEL = dict(config='c.py', checkpoint='k.pth', checkpoint_sha256='abc', cfg_options={})


# ------------------------------------------------------------------------ units
@pytest.mark.parametrize('n', [0, 1, 5, 38, 39])
@pytest.mark.parametrize('world', [1, 2, 3, 8])
def test_distributed_index_split_gives_balanced_contiguous_blocks(n, world):
    items = [f'img{i}.png' for i in range(n)]
    blocks = split_blocks(items, world)
    assert len(blocks) == world
    assert [p for block in blocks for p in block] == items  # the merge is a concatenation
    sizes = [len(block) for block in blocks]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_distributed_index_split_refuses_no_process():
    with pytest.raises(ValueError, match='at least 1'):
        split_blocks(['a'], 0)


def test_distributed_index_detects_torchrun_srun_or_one_process():
    torchrun = dict(RANK='1', WORLD_SIZE='4', LOCAL_RANK='1', MASTER_ADDR='h', MASTER_PORT='1')
    assert detect_launch('auto', torchrun) == Launch('pytorch', 1, 4, 1)
    srun = dict(
        SLURM_PROCID='5', SLURM_STEP_NUM_TASKS='8', SLURM_NTASKS='8', SLURM_LOCALID='1', SLURM_NODELIST='n[1-2]'
    )
    assert detect_launch('auto', srun) == Launch('slurm', 5, 8, 1, 'n[1-2]')
    # a batch script is no srun task (no step task count): one process
    assert not detect_launch('auto', dict(SLURM_PROCID='0', SLURM_NTASKS='8')).distributed
    assert detect_launch('auto', {}) == Launch()
    assert detect_launch('none', torchrun) == Launch()
    assert detect_launch('auto', dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0')) == Launch()  # torchrun, one process
    with pytest.raises(LaunchError, match='RANK and WORLD_SIZE and LOCAL_RANK not set'):
        detect_launch('pytorch', {})
    with pytest.raises(LaunchError, match='expected whole numbers'):
        detect_launch('pytorch', dict(RANK='x', WORLD_SIZE='2', LOCAL_RANK='0'))


def test_distributed_index_rank_uses_its_local_gpu():
    two = Launch('pytorch', 3, 4, 1)
    assert rank_device(None, two, cuda_available=True) == 'cuda:1'
    assert rank_device('cuda', two, cuda_available=True) == 'cuda:1'
    assert rank_device(None, two, cuda_available=False) == 'cpu'
    assert rank_device(None, Launch(), cuda_available=True) == 'cuda'
    assert rank_device('cuda:0', two, cuda_available=True) == 'cuda:0'


def test_distributed_index_one_process_group_is_immediate():
    group = RankGroup(Launch())
    group.join('cpu', 1.0)
    assert group.gather(3) == [3] and group.first
    with pytest.raises(KeyError):
        group.agree(KeyError('x'))
    group.agree(None)
    group.leave()


def _group_of(rank: int, others: list[str | None]) -> RankGroup:
    """Rank ``rank`` of a joined group whose gather returns ``others`` with this rank's line in place."""
    group = RankGroup(Launch('pytorch', rank, len(others), rank))
    group._joined = True

    def gather(line):
        return [line if r == rank else other for r, other in enumerate(others)]

    group.gather = gather
    return group


def test_distributed_index_agreed_error_names_the_rank_and_rank_0_prints_it():
    with pytest.raises(RankFailure) as failure:
        _group_of(0, [None, 'CUDA out of memory', None]).agree(None)
    assert str(failure.value) == 'error: rank 1 of 3: CUDA out of memory'
    assert failure.value.shown and failure.value.together
    with pytest.raises(RankFailure) as failure:
        _group_of(1, [None, None]).agree(ArchiveIndexError('x was built with another checkpoint'))
    assert str(failure.value) == 'error: rank 1 of 2: x was built with another checkpoint'
    assert not failure.value.shown  # rank 0 speaks for the run
    with pytest.raises(RankFailure) as failure:  # the same on every rank: no rank named
        _group_of(0, ['no image under x', 'no image under x']).agree(SystemExit('no image under x'))
    assert str(failure.value) == 'error: no image under x'
    _group_of(0, [None, None]).agree(None)


def _part(index_dir: Path, rank: int, shards: list[list[str]], emb: dict[str, np.ndarray]) -> None:
    part = ArchiveIndex.create(part_folder(index_dir, rank), index_dir / 'images', 4, MODEL)
    for paths in shards:
        part.add(paths, np.stack([emb[p] for p in paths]))


def test_distributed_index_merge_appends_the_parts_in_selection_order(tmp_path):
    order = [f'{i:02d}.png' for i in range(11)]
    rng = np.random.default_rng(0)
    emb = {p: rng.standard_normal(4).astype(np.float32) for p in order + ['extra.png']}
    index = ArchiveIndex.create(tmp_path, tmp_path / 'images', 4, MODEL)
    index.add(order[:2], np.stack([emb[p] for p in order[:2]]))  # already indexed before the parts
    # rank blocks of an earlier 3-process run, one cut short, then a rerun's part; '01.png'
    # is in a part too (a merge cut short after writing it to the index)
    _part(tmp_path, 0, [['01.png', '02.png'], ['03.png']], emb)
    _part(tmp_path, 1, [['07.png', '08.png'], ['extra.png']], emb)
    _part(tmp_path, 2, [['04.png', '05.png'], ['06.png'], ['09.png', '10.png']], emb)
    assert len(part_folders(tmp_path)) == 3 and len(part_paths(tmp_path)) == 11

    assert merge_parts(index, order, shard_size=4) == 10
    merged = ArchiveIndex(tmp_path)
    assert merged.paths() == order + ['extra.png']  # not in the selection: last
    np.testing.assert_array_equal(merged.embeddings(), np.stack([emb[p] for p in merged.paths()]))
    sizes = [len(json.loads(f.read_text())) for f in sorted(tmp_path.glob('shard_*.json'))]
    assert sizes == [2, 4, 4, 2]  # the index's shard, then the merged ones
    assert merge_parts(merged, order, shard_size=4) == 0  # merged twice: nothing more


# ------------------------------------------------------------------ processes
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env() -> dict:
    return {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHON': sys.executable, 'PORT': str(_free_port())}


def _torchrun(*args) -> list[str]:
    run = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2']
    return [*run, '--master_port', str(_free_port()), 'tools/retrieve.py', 'index', *map(str, args)]


def _one_process_index(
    root: Path, paths: list[str], ckpt, options, shard_size: int
) -> tuple[list[str], np.ndarray, list[int]]:
    """What one process indexes: ``paths`` in their order, embedded, in shards of ``shard_size``."""
    model = init_model(CONFIG, ckpt, cfg_options=options)
    emb = torch.cat([e for _, e in iter_image_embeddings(model, [str(root / p) for p in paths], 4)]).numpy()
    sizes = [min(shard_size, len(paths) - s) for s in range(0, len(paths), shard_size)]
    return paths, emb, sizes


def _assert_same_index(index_dir: Path, expected: tuple[list[str], np.ndarray, list[int]]) -> None:
    paths, emb, sizes = expected
    index = ArchiveIndex(index_dir)
    assert index.paths() == paths
    np.testing.assert_allclose(index.embeddings(), emb, atol=1e-5)
    assert [len(json.loads(f.read_text())) for f in sorted(index_dir.glob('shard_*.json'))] == sizes
    assert not (index_dir / 'parts').exists()


def test_distributed_index_two_gloo_processes_equal_one_process(tmp_path, demo_root, tiny):
    ckpt, cli, options = tiny
    images, index_dir = tmp_path / 'archive', tmp_path / 'index'
    shutil.copytree(demo_root / 'images', images)
    good = find_images(images)
    # unreadable files, one in each rank's block: a truncated PNG (found while encoding) and a
    # text file (found from its header before the model loads)
    source = (images / good[0]).read_bytes()
    (images / 'aa_truncated.png').write_bytes(source[: len(source) // 2])
    (images / 'zz_not_an_image.png').write_text('not an image')
    n = len(find_images(images))
    cmd = ['bash', 'tools/dist_index.sh', '2', CONFIG, ckpt, images, index_dir, '--shard-size', '4', '--ann', 'flat']
    cmd += ['--skip-unreadable', *cli]
    proc = subprocess.run(list(map(str, cmd)), cwd=REPO, capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert f'{n} images under {images}: 0 already indexed, {n} to encode' in out
    assert f'2 processes encode about {n // 2} images each' in out
    assert out.count(f'index {index_dir}: {n - 2} images, 16-d, faiss flat') == 1  # rank 0 alone reports
    assert 'rank 1' not in out
    assert 'skipped 2 unreadable image files' in out
    skipped = ArchiveIndex(index_dir).skipped
    assert [s['path'] for s in skipped] == ['aa_truncated.png', 'zz_not_an_image.png']
    _assert_same_index(index_dir, _one_process_index(images, good, ckpt, options, 4))
    assert ArchiveIndex(index_dir).has_ann


def _rank_pid(parent: int, rank: int) -> int | None:
    """The pid of torchrun's worker of ``rank`` (read from /proc), or None before it starts."""
    for proc in Path('/proc').iterdir():
        try:
            status = (proc / 'status').read_text()
            environ = (proc / 'environ').read_bytes().split(b'\0')
        except (OSError, ValueError):
            continue
        if f'PPid:\t{parent}\n' in status and f'RANK={rank}'.encode() in environ:
            return int(proc.name)
    return None


def test_distributed_index_resumes_after_a_killed_rank(tmp_path, demo_root, tiny):
    ckpt, cli, options = tiny
    archive = tmp_path / 'archive'
    shutil.copytree(demo_root / 'images', archive)
    # large images at the end of rank 1's block take it seconds to decode: it is killed half-way
    ramp = np.linspace(0, 255, 4000, dtype=np.uint8)
    big = np.stack(
        [np.tile(ramp, (4000, 1)), np.tile(ramp[:, None], (1, 4000)), np.full((4000, 4000), 90, np.uint8)], -1
    )
    for i in range(3):
        Image.fromarray(np.roll(big, 100 * i, axis=1)).save(archive / f'zz_large_{i}.jpg', quality=80)
    n = len(find_images(archive))
    index_dir = tmp_path / 'index'
    args = [CONFIG, ckpt, archive, index_dir, '--shard-size', '2', '--batch-size', '2', *cli]
    run = subprocess.Popen(_torchrun(*args), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=_env())  # fmt: skip
    first_shard = part_folder(index_dir, 1) / 'shard_00000.npy'
    deadline = time.monotonic() + 240
    while not first_shard.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    pid = _rank_pid(run.pid, 1)
    assert pid is not None and first_shard.exists(), run.communicate(timeout=60)[0][-3000:]
    os.kill(pid, signal.SIGKILL)
    out = run.communicate(timeout=120)[0]
    assert run.returncode != 0, out[-3000:]
    saved = {rank: len(ArchiveIndex(part_folder(index_dir, rank)).paths()) for rank in (0, 1)}
    # rank 1 kept its saved shards and lost the rest of its block; rank 0, stopped by torchrun, saved what it had
    assert 2 <= saved[1] < n // 2 and saved[0] <= n - n // 2, (saved, out[-3000:])
    assert not list(index_dir.glob('shard_*'))

    proc = subprocess.run(_torchrun(*args), cwd=REPO, capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    done = saved[0] + saved[1]
    assert f'{n} images under {archive}: {done} already indexed, {n - done} to encode' in proc.stdout
    assert f'merged {n} images from the part folders' in proc.stdout
    _assert_same_index(index_dir, _one_process_index(archive, find_images(archive), ckpt, options, 2))
