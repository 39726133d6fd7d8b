"""Joining and leaving the process group of a distributed run."""

from __future__ import annotations

from mmengine.config import Config

from .config_errors import ConfigError


def setup_distributed(cfg: Config, cuda_available: bool | None = None) -> Config:
    """Make a distributed config runnable on the machine at hand, and join the process group.

    The group is initialised here, before the Runner (which skips its own
    ``init_dist`` when a group exists), so that the tools can agree across
    processes first (``tools/train.py`` on resuming after a restart). With
    CUDA, mmengine's ``init_dist`` does it with the config's ``dist_cfg``, as
    the Runner would. Without CUDA, the NCCL backend becomes gloo (an explicit
    ``gloo`` or ``mpi`` is kept), the group is initialised for the ``pytorch``
    launcher from torchrun's ``env://`` variables (mmengine's ``init_dist``
    always selects a CUDA device), and the model is wrapped by DDP without
    ``device_ids`` (mmengine passes the local rank as a CUDA device id, which
    DDP rejects for a CPU module). ``find_unused_parameters`` (a top-level
    config key, default False) reaches DDP either way: set it for ablations
    that leave a module without gradients.

    ``env_cfg.dist_cfg.timeout`` (seconds; mmengine's key, which its
    ``init_dist`` reads on the GPU path) bounds every collective: a process
    that waits longer for the others (one of them stopped or hung) raises
    instead of blocking, and torchrun restarts the group (docs/distributed.md).
    Unset, torch's defaults apply (30 min for gloo, 10 min for NCCL).

    Raises:
        ConfigError: The timeout is not a positive number of seconds.
    """
    if cfg.get('launcher', 'none') == 'none':
        return cfg
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    timeout = _collective_timeout(dist_cfg)
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if cuda_available:
        _init_gpu_process_group(cfg.launcher, dist_cfg)
    else:
        if dist_cfg.get('backend', 'nccl') == 'nccl':
            dist_cfg['backend'] = 'gloo'
        if cfg.launcher == 'pytorch':
            _init_cpu_process_group(dist_cfg['backend'], timeout)
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,  # a CPU module: mmengine would pass [LOCAL_RANK]
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            **(cfg.get('model_wrapper_cfg') or {}),
        )
    return cfg


def _collective_timeout(dist_cfg: dict) -> float | None:
    """``dist_cfg['timeout']`` checked: seconds, or None for torch's default."""
    timeout = dist_cfg.get('timeout')
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError(f'env_cfg.dist_cfg.timeout must be a positive number of seconds, got {timeout!r}')
    return timeout


def _init_gpu_process_group(launcher: str, dist_cfg: dict) -> None:
    """mmengine's ``init_dist`` (CUDA device, backend, timeout) unless a group exists."""
    import torch.distributed as dist
    from mmengine.dist import init_dist

    if not dist.is_initialized():
        init_dist(launcher, **dist_cfg)


def _init_cpu_process_group(backend: str, timeout: float | None) -> None:
    """Join torchrun's group (its ``env://`` variables) unless already joined."""
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        seconds = None if timeout is None else datetime.timedelta(seconds=timeout)
        dist.init_process_group(backend=backend, timeout=seconds)


def finish_distributed() -> None:
    """Destroy the process group while the interpreter is fully alive.

    Left to the interpreter's shutdown, gloo's worker threads can still hold
    tensors whose release needs the GIL, and the process aborts ("terminate
    called without an active exception") after the work is done. Callers
    drop their references to the runner (whose DDP wrapper holds the group)
    first; the garbage collector then frees what remains.
    """
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
