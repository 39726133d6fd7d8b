"""The data loaders' ``num_workers``, kept within the CPUs this process may use."""

from __future__ import annotations

import os
from collections.abc import Mapping

from mmengine.config import Config
from mmengine.logging import MMLogger

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def local_processes(environ: Mapping[str, str] | None = None) -> int:
    """How many processes of this run share the machine (torchrun's ``LOCAL_WORLD_SIZE``; 1 without it)."""
    environ = os.environ if environ is None else environ
    try:
        return max(1, int(environ.get('LOCAL_WORLD_SIZE', '1')))
    except ValueError:
        return 1


def workers_per_process(cpus: int, processes: int) -> int:
    """The most loader workers one process should start: its share of the CPUs, at least one."""
    return max(1, cpus // max(1, processes))


def limit_loader_workers(
    cfg: Config,
    cpus: int | None = None,
    processes: int | None = None,
    announce: bool | None = None,
) -> Config:
    """Lower each data loader's ``num_workers`` to this process's share of the CPUs.

    The paper configs ask for 4 workers per loader, sized for GPU machines;
    where fewer CPUs are available, the extra workers only compete for them
    and PyTorch warns on every loader. Under torchrun every local process
    starts its own workers, so the CPUs are divided by ``LOCAL_WORLD_SIZE``.
    Counts are only lowered, never raised; 0 (loading in the main process)
    stays 0. One line says what changed.

    Args:
        cfg: The config; its loaders are changed in place.
        cpus: CPUs this process may use (default: :func:`usable_cpus`).
        processes: Local processes of the run (default: :func:`local_processes`).
        announce: Log the line (default: on the machine's first process only,
            ``LOCAL_RANK`` 0 or unset, so that it appears once).

    Returns:
        ``cfg``.
    """
    cpus = usable_cpus() if cpus is None else cpus
    processes = local_processes() if processes is None else processes
    limit = workers_per_process(cpus, processes)
    lowered = _lower_workers(cfg, limit)
    if announce is None:
        announce = os.environ.get('LOCAL_RANK', '0') == '0'
    if lowered and announce:
        MMLogger.get_current_instance().info(_message(lowered, limit, cpus, processes))
    return cfg


def _lower_workers(cfg: Config, limit: int) -> dict[str, int]:
    """Set every loader's ``num_workers`` above ``limit`` to it; returns ``loader -> old count``."""
    lowered = {}
    for name in LOADERS:
        loader = cfg.get(name)
        workers = loader.get('num_workers', 0) if loader else 0
        if isinstance(workers, int) and workers > limit:
            lowered[name] = workers
            loader['num_workers'] = limit
    return lowered


def _message(lowered: dict[str, int], limit: int, cpus: int, processes: int) -> str:
    """``'num_workers 4 -> 2 (train, val): this process may use 2 CPUs'``."""
    before = '/'.join(str(n) for n in sorted(set(lowered.values())))
    loaders = ', '.join(name.removesuffix('_dataloader') for name in lowered)
    if processes > 1:
        return f'num_workers {before} -> {limit} ({loaders}): {cpus} CPUs for {processes} processes on this machine'
    return f'num_workers {before} -> {limit} ({loaders}): this process may use {cpus} CPUs'
