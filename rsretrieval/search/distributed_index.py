"""``index`` with several processes (torchrun, Slurm's srun): ranks, blocks, part folders, the merge.

Every rank computes the same list of images still to encode and takes one
contiguous block of it (:func:`split_blocks`), in the order one process would
encode them. It writes its shards into a part folder of the index,
``INDEX_DIR/parts/rank-NNNNN`` (an :class:`~.archive_index.ArchiveIndex` of its
own, shard after shard, as one process writes the index), so a rank that dies
loses only its unsaved images. When every rank is done, rank 0 appends the
images of the parts to the index in the one-process order (:func:`merge_parts`,
a shard at a time) and removes the parts. A rerun, with any number of
processes, counts the images of the parts as done.

The ranks exchange only small Python objects (file lists, counts), never
embeddings: those go through the index folder, which every node must share.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .archive_index import ArchiveIndex, ArchiveIndexError

PARTS = 'parts'  # the folder of the part folders, inside the index folder
LAUNCHERS = ('auto', 'none', 'pytorch', 'slurm')
DEFAULT_PORT = 29500  # Slurm without MASTER_PORT, as mmengine's slurm launcher

T = TypeVar('T')


class LaunchError(ValueError):
    """The launcher asked for is not the one the environment describes."""


class RankFailure(RuntimeError):
    """A run that a rank (or every rank) cannot continue.

    Args:
        text: What to print: one line naming the rank that failed (or a list of files).
        shown: Whether this process prints it: rank 0 speaks for an error that the ranks
            agreed on, every rank for its own.
        together: Every rank is still there (the error was agreed on): the others wait
            until rank 0 has printed it before they leave, so that a launcher that stops
            the run when the first process ends does not stop rank 0 before it speaks.
    """

    def __init__(self, text: str, shown: bool = True, together: bool = False) -> None:
        super().__init__(text)
        self.shown, self.together = shown, together


# ---------------------------------------------------------------------- launch
@dataclass(frozen=True)
class Launch:
    """Where this process stands in the run.

    Attributes:
        kind: ``'none'`` (one process), ``'pytorch'`` (torchrun's variables) or ``'slurm'``.
        rank: Global rank.
        world_size: Processes of the run.
        local_rank: Rank on this node: the GPU this process uses.
        nodelist: Slurm's node list (the first node hosts the rendezvous), ``'slurm'`` only.
    """

    kind: str = 'none'
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    nodelist: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def name(self) -> str:
        """``'rank 1 of 4'``."""
        return f'rank {self.rank} of {self.world_size}'


def detect_launch(launcher: str = 'auto', environ: Mapping[str, str] | None = None) -> Launch:
    """The launch described by the environment.

    ``'auto'`` reads torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``, then
    srun's ``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS`` and ``SLURM_LOCALID`` (srun
    sets the step's task count; a batch script, which is not one of the tasks,
    has none); with neither, or a world of one, it is one process.

    Raises:
        LaunchError: An unknown launcher, or one whose variables are missing or not numbers.
    """
    env = os.environ if environ is None else environ
    if launcher not in LAUNCHERS:
        raise LaunchError(f'--launcher must be one of {", ".join(LAUNCHERS)}, got {launcher!r}')
    if launcher == 'auto':
        if 'WORLD_SIZE' in env and 'RANK' in env:
            launcher = 'pytorch'
        elif 'SLURM_PROCID' in env and 'SLURM_STEP_NUM_TASKS' in env:
            launcher = 'slurm'
        else:
            return Launch()
    if launcher == 'none':
        return Launch()
    if launcher == 'pytorch':
        rank, world, local = _ints(env, ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'), 'torchrun')
        launch = Launch('pytorch', rank, world, local)
    else:
        tasks = 'SLURM_STEP_NUM_TASKS' if 'SLURM_STEP_NUM_TASKS' in env else 'SLURM_NTASKS'
        rank, world, local = _ints(env, ('SLURM_PROCID', tasks, 'SLURM_LOCALID'), 'srun')
        nodes = env.get('SLURM_STEP_NODELIST') or env.get('SLURM_NODELIST') or env.get('SLURM_JOB_NODELIST')
        launch = Launch('slurm', rank, world, local, nodes)
    if not 0 <= launch.rank < launch.world_size:
        raise LaunchError(f'rank {launch.rank} is not below the world size {launch.world_size}')
    return launch if launch.distributed else Launch()


def _ints(env: Mapping[str, str], names: tuple[str, ...], who: str) -> list[int]:
    missing = [name for name in names if name not in env]
    if missing:
        raise LaunchError(f'{" and ".join(missing)} not set: start the processes with {who}')
    try:
        return [int(env[name]) for name in names]
    except ValueError:
        raise LaunchError(f'{", ".join(f"{n}={env[n]!r}" for n in names)}: expected whole numbers') from None


def rank_device(device: str | None, launch: Launch, cuda_available: bool) -> str:
    """The device this rank encodes on: ``device`` (default: CUDA when there is one), ``cuda`` being
    the node's GPU numbered by the local rank when several processes run."""
    device = device or ('cuda' if cuda_available else 'cpu')
    if device == 'cuda' and launch.distributed:
        return f'cuda:{launch.local_rank}'
    return device


def _slurm_master(nodelist: str | None, environ: Mapping[str, str]) -> str:
    """``MASTER_ADDR`` when set, else the first host of Slurm's node list (as mmengine finds it)."""
    if environ.get('MASTER_ADDR'):
        return environ['MASTER_ADDR']
    if not nodelist:
        raise LaunchError('no SLURM_NODELIST to find the first node in: set MASTER_ADDR')
    hosts = subprocess.run(
        ['scontrol', 'show', 'hostnames', nodelist], capture_output=True, text=True, check=True
    ).stdout.split()
    return hosts[0]


# ----------------------------------------------------------------------- group
class RankGroup:
    """The processes of an indexing run; with one process every call is immediate.

    Args:
        launch: This process's place in the run.
    """

    def __init__(self, launch: Launch) -> None:
        self.launch = launch
        self._joined = False

    @property
    def first(self) -> bool:
        return self.launch.rank == 0

    def join(self, device: str, timeout: float, environ: Mapping[str, str] | None = None) -> None:
        """Join the process group: NCCL when this rank encodes on a GPU (that GPU made
        current), gloo otherwise.

        ``timeout`` (seconds) bounds every collective, the last one included, where
        the ranks wait for the slowest to finish its block: torch's default for gloo,
        30 min, would end a long run whose ranks finish far apart.
        """
        if not self.launch.distributed or self._joined:
            return
        import torch
        import torch.distributed as dist

        env = os.environ if environ is None else environ
        backend = 'nccl' if device.startswith('cuda') else 'gloo'
        if backend == 'nccl':
            torch.cuda.set_device(torch.device(device))
        options: dict[str, Any] = dict(backend=backend, timeout=datetime.timedelta(seconds=timeout))
        if self.launch.kind == 'slurm':
            address = f'tcp://{_slurm_master(self.launch.nodelist, env)}:{env.get("MASTER_PORT", DEFAULT_PORT)}'
            options.update(init_method=address, rank=self.launch.rank, world_size=self.launch.world_size)
        dist.init_process_group(**options)
        self._joined = True

    def gather(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order, on every rank (a barrier too)."""
        if not self._joined:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.launch.world_size
        try:
            dist.all_gather_object(out, obj)
        except RuntimeError as err:  # gloo and NCCL report a lost peer or a timeout so
            raise RankFailure(
                f'error: {self.launch.name}: waiting for the other ranks failed ({one_line(err)}): one of them ended '
                '(killed or crashed) or stopped answering; rerun the same command to resume'
            ) from err
        return out

    def agree(self, error: BaseException | None) -> None:
        """Go on only if no rank failed: each rank gives its error (or None); on every rank,
        :class:`RankFailure` names the first rank that failed (rank 0 prints it).

        ``SystemExit`` carries a message meant for the user as it is.
        """
        if not self._joined:
            if error is not None:
                raise error
            return
        lines = self.gather(None if error is None else one_line(error))
        failed = [(rank, line) for rank, line in enumerate(lines) if line is not None]
        if not failed:
            return
        rank, line = failed[0]
        everywhere = len(failed) == len(lines) and len(set(lines)) == 1
        message = line if everywhere else f'rank {rank} of {self.launch.world_size}: {line}'
        raise RankFailure(f'error: {message}', shown=self.first, together=True)

    def wait_for_all(self) -> None:
        """A barrier, for the ranks that leave together after an agreed error; a failure to
        meet (a rank already gone) is not reported again."""
        if not self._joined:
            return
        import torch.distributed as dist

        with contextlib.suppress(RuntimeError):
            dist.barrier()

    def leave(self) -> None:
        """Leave the group (without a barrier: after a failure the others may be gone)."""
        if not self._joined:
            return
        import torch.distributed as dist

        gc.collect()  # gloo's threads must not free tensors during the interpreter's shutdown
        dist.destroy_process_group()
        self._joined = False


def one_line(error: BaseException) -> str:
    """``error`` as one line for the user: a ``SystemExit``'s message, the text of the errors
    whose message says it all, otherwise the type and the text."""
    if isinstance(error, SystemExit):
        return str(error.code)
    text = ' '.join(str(error).split())
    return text if isinstance(error, (ArchiveIndexError, LaunchError, OSError)) else f'{type(error).__name__}: {text}'


# ---------------------------------------------------------------------- blocks
def split_blocks(items: Sequence[T], world_size: int) -> list[list[T]]:
    """``items`` cut into ``world_size`` contiguous blocks, in order, whose sizes differ by at
    most one (the first ones larger): rank ``r`` takes block ``r``, and the blocks joined
    give ``items`` back."""
    if world_size < 1:
        raise ValueError(f'world_size must be at least 1, got {world_size}')
    size, extra = divmod(len(items), world_size)
    blocks, start = [], 0
    for rank in range(world_size):
        end = start + size + (rank < extra)
        blocks.append(list(items[start:end]))
        start = end
    return blocks


# ---------------------------------------------------------------------- parts
def part_folder(index_dir: str | os.PathLike, rank: int) -> Path:
    """The part folder rank ``rank`` writes its shards into."""
    return Path(index_dir) / PARTS / f'rank-{rank:05d}'


def part_folders(index_dir: str | os.PathLike) -> list[Path]:
    """The part folders of the index that hold a ``meta.json``, by rank."""
    return sorted(p.parent for p in (Path(index_dir) / PARTS).glob('rank-*/meta.json'))


def part_paths(index_dir: str | os.PathLike) -> list[str]:
    """The image paths saved in the part folders (of any earlier run), folder after folder."""
    return [path for folder in part_folders(index_dir) for path in ArchiveIndex(folder).paths()]


def check_parts(index_dir: str | os.PathLike, meta: Mapping[str, Any]) -> None:
    """Every part folder was written for the index ``meta`` describes (image root, width, checkpoint).

    Raises:
        ArchiveIndexError: A part folder of another image root, width or checkpoint.
    """
    for folder in part_folders(index_dir):
        part = ArchiveIndex(folder).meta
        for key in ('image_root', 'embed_dim'):
            if part[key] != meta[key]:
                raise ArchiveIndexError(f'{folder}: {key} is {part[key]!r}, not {meta[key]!r}; use --rebuild')
        if part['model'].get('checkpoint_sha256') != meta['model'].get('checkpoint_sha256'):
            raise ArchiveIndexError(f'{folder} was written with another checkpoint; use --rebuild')


def remove_parts(index_dir: str | os.PathLike) -> None:
    shutil.rmtree(Path(index_dir) / PARTS, ignore_errors=True)


def _part_shards(folder: Path) -> list[tuple[Path, list[str]]]:
    """``(embeddings file, paths)`` of each shard of a part folder, in order (the layout of
    :mod:`~rsretrieval.search.archive_index`); a shard's ``.npy`` is written after its ``.json``."""
    import json

    return [
        (npy, json.loads(npy.with_suffix('.json').read_text(encoding='utf-8')))
        for npy in sorted(folder.glob('shard_*.npy'))
    ]


def merge_parts(index: ArchiveIndex, order: Sequence[str], shard_size: int) -> int:
    """Append to ``index`` the images of its part folders that it lacks, in the order of ``order``
    (images ``order`` does not name come after, in the parts' order), ``shard_size`` a shard.

    Each shard is assembled from memory-mapped part shards: memory stays at one shard.
    A merge cut short leaves complete shards; merging again appends the rest.

    Returns:
        The number of images appended.
    """
    if shard_size < 1:
        raise ValueError(f'shard_size must be at least 1, got {shard_size}')
    have = set(index.paths())
    found: dict[str, tuple[Path, int]] = {}  # path -> (part shard, row)
    sizes: dict[Path, int] = {}
    for folder in part_folders(index.folder):
        for npy, paths in _part_shards(folder):
            sizes[npy] = len(paths)
            for row, path in enumerate(paths):
                if path not in have and path not in found:
                    found[path] = (npy, row)
    position = {path: i for i, path in enumerate(order)}
    ordered = sorted(found, key=lambda path: position.get(path, len(position)))  # stable: the rest in part order
    dim = index.meta['embed_dim']
    for start in range(0, len(ordered), shard_size):
        chunk = ordered[start : start + shard_size]
        rows: dict[Path, list[tuple[int, int]]] = defaultdict(list)
        for i, path in enumerate(chunk):
            npy, row = found[path]
            rows[npy].append((i, row))
        emb = np.empty((len(chunk), dim), np.float32)
        for npy, pairs in rows.items():
            part = np.load(npy, mmap_mode='r', allow_pickle=False)
            if part.shape != (sizes[npy], dim):
                raise ArchiveIndexError(f'{npy}: shape {part.shape} does not match its {sizes[npy]} paths')
            emb[[i for i, _ in pairs]] = part[[row for _, row in pairs]]
        index.add(chunk, emb)
    return len(ordered)
