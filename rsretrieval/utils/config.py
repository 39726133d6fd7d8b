"""Config helpers shared by the command-line tools."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os.path as osp
from collections.abc import Iterator
from typing import Any

from mmengine.config import Config
from mmengine.logging import MMLogger

from rsretrieval.cli import add_common_args, fail  # noqa: F401  (add_common_args: re-exported)

# Top-level variables that a config copies into nested keys when it is read:
# overriding the variable with --cfg-options moves every nested copy with it.
PROPAGATED_VARIABLES = {'data_root': 'data_root', 'text_weights': 'pretrained', 'image_weights': 'pretrained'}


def _replace_values(node: Any, key: str, old: Any, new: Any) -> int:
    """Set ``key`` to ``new`` wherever it equals ``old``; return the count."""
    count = 0
    if isinstance(node, dict):
        if key in node and node[key] == old:
            node[key] = new
            count += 1
        for value in node.values():
            count += _replace_values(value, key, old, new)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _replace_values(value, key, old, new)
    return count


def merge_cfg_options(cfg: Config, options: dict | None) -> Config:
    """Check ``--cfg-options`` (:func:`check_cfg_options`) and merge them into ``cfg``
    (:func:`apply_cfg_options`)."""
    if not options:
        return cfg
    check_cfg_options(cfg, dict(options))
    return apply_cfg_options(cfg, options)


def apply_cfg_options(cfg: Config, options: dict | None) -> Config:
    """Merge ``--cfg-options`` into ``cfg``; some top-level variables propagate.

    A Python config resolves its variables when it is read, so overriding the
    top-level ``data_root`` alone would change nothing. For each variable of
    :data:`PROPAGATED_VARIABLES` that is overridden, every nested key that held
    the config's value is set to the new one: ``--cfg-options data_root=PATH``
    moves the whole dataset, ``text_weights=PATH`` the text encoder and the
    fusion encoder together, ``image_weights=NAME`` the image backbone.
    """
    if not options:
        return cfg
    options = dict(options)
    moved = {name: options.pop(name) for name in PROPAGATED_VARIABLES if name in options}
    cfg.merge_from_dict(options)
    if moved:
        as_dict = cfg.to_dict()
        for name, new in moved.items():
            old = cfg.get(name)
            if old is not None:
                _replace_values(as_dict, PROPAGATED_VARIABLES[name], old, new)
            as_dict[name] = new
        cfg = Config(as_dict, filename=cfg.filename)
    return cfg


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


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` and apply the options of :func:`add_common_args`.

    Raises:
        ConfigError: The config cannot be read, or an option does not fit it (one line).
    """
    cfg = merge_cfg_options(read_config(args.config), args.cfg_options)
    pin_memory_where_useful(cfg)
    cfg.launcher = args.launcher
    if getattr(args, 'compile', False):
        cfg.custom_hooks = [*(cfg.get('custom_hooks') or []), dict(type='CompileModulesHook')]
    setup_distributed(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


class ConfigError(ValueError):
    """A config that cannot be read, or a ``--cfg-options`` key it cannot take; one line."""


def read_config(path: str) -> Config:
    """``Config.fromfile`` with a one-line :class:`ConfigError` naming the file."""
    try:
        return Config.fromfile(path)
    except FileNotFoundError as err:
        raise ConfigError(f'config not found: {err.filename or path}') from err
    except Exception as err:  # syntax errors, bad _base_ paths, errors raised by the config's code
        first = str(err).strip().splitlines()[0] if str(err).strip() else ''
        raise ConfigError(f'config {path} cannot be read: {type(err).__name__}: {first}') from err


#: Top-level keys the Runner reads that a config may leave out.
RUNNER_ONLY_KEYS = frozenset({'find_unused_parameters', 'model_wrapper_cfg', 'compile', 'cfg', 'launcher'})


def _runner_keys() -> set[str]:
    import inspect

    from mmengine.runner import Runner

    return set(inspect.signature(Runner.__init__).parameters) - {'self'} | RUNNER_ONLY_KEYS


def _registered_class(name: str):
    """The class registered as ``name`` in any rsretrieval registry (or mmengine's), or None."""
    from rsretrieval import registry

    for reg in (
        registry.MODELS,
        registry.BACKBONES,
        registry.TEXT_ENCODERS,
        registry.FUSION_HEADS,
        registry.LOSSES,
        registry.RERANKERS,
        registry.DATASETS,
        registry.TRANSFORMS,
        registry.HOOKS,
        registry.LOOPS,
        registry.METRICS,
        registry.OPTIM_WRAPPERS,
        registry.OPTIMIZERS,
        registry.PARAM_SCHEDULERS,
        registry.DATA_SAMPLERS,
    ):
        try:
            cls = reg.get(name)
        except Exception:  # a registry whose lazy import fails says nothing here
            cls = None
        if cls is not None:
            return cls
    return None


def _closed_arguments(cls) -> set[str] | None:
    """The constructor arguments of ``cls``, or None when it takes ``**kwargs`` (open)."""
    import inspect

    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def check_cfg_options(cfg: Config, options: dict) -> None:
    """Refuse ``--cfg-options`` keys that would be silently ignored or fail later.

    - A top-level key that the config does not have and the Runner does not read
      (``data_rot`` for ``data_root``) is refused, with the closest existing key.
    - A nested key that is new where the enclosing dict has a ``type`` whose
      constructor takes a fixed set of arguments (``model.no_such_key``) is
      refused, naming the component and its closest argument. Keys the config
      already has, and new keys of components that take ``**kwargs``, pass
      (``model.backbone.pretrained=PATH`` sets an argument the config leaves out).

    Raises:
        ConfigError: One line naming the key.
    """
    import difflib

    tree = cfg.to_dict()
    runner_keys = None
    for dotted in options:
        parts = str(dotted).split('.')
        top = parts[0]
        if top not in tree:
            runner_keys = runner_keys if runner_keys is not None else _runner_keys()
            if top in runner_keys:
                continue
            known = sorted(k for k in tree if not k.startswith('_')) + sorted(runner_keys)
            close = difflib.get_close_matches(top, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ''
            raise ConfigError(f"--cfg-options {dotted}: the config has no top-level key '{top}'{hint}")
        node = tree
        for part in parts[:-1]:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                node = None  # a new branch: nothing to check it against
                break
        leaf = parts[-1]
        if not isinstance(node, dict) or leaf in node or not isinstance(node.get('type'), str):
            continue
        cls = _registered_class(node['type'])
        accepted = _closed_arguments(cls) if cls is not None else None
        if accepted is None or leaf in accepted:
            continue
        close = difflib.get_close_matches(leaf, sorted(accepted), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f'; it takes {", ".join(sorted(accepted))}'
        raise ConfigError(f"--cfg-options {dotted}: {node['type']} takes no argument '{leaf}'{hint}")


@contextlib.contextmanager
def quiet_runner(cfg: Config, enabled: bool = True) -> Iterator[None]:
    """Build a Runner without mmengine's environment dump, config and hook table.

    Tools that evaluate, search or draw print their result first: the Runner is
    built at ``WARNING`` level, then its logger returns to the config's level
    (``INFO``) for what the tool itself reports. ``enabled=False`` (``--verbose``)
    keeps mmengine's full log.
    """
    if not enabled:
        yield
        return
    level = cfg.get('log_level', 'INFO')
    cfg.log_level = 'WARNING'
    try:
        yield
    finally:
        cfg.log_level = level
        numeric = logging.getLevelName(level) if isinstance(level, str) else level
        logger = MMLogger.get_current_instance()
        logger.setLevel(numeric)
        for handler in logger.handlers:
            handler.setLevel(numeric)


@contextlib.contextmanager
def quiet_logs(enabled: bool = True) -> Iterator[None]:
    """Hold the current mmengine logger (and its handlers) at ``WARNING`` inside the block.

    For tools that build a model and then load a checkpoint into it: the
    build's notes about pretrained initialisation are noise before their result.
    """
    if not enabled:
        yield
        return
    logger = MMLogger.get_current_instance()
    levels = [logger.level, *(h.level for h in logger.handlers)]
    logger.setLevel(logging.WARNING)
    for handler in logger.handlers:
        handler.setLevel(max(handler.level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(levels[0])
        for handler, level in zip(logger.handlers, levels[1:]):
            handler.setLevel(level)


def add_tensorboard(cfg: Config) -> Config:
    """Add mmengine's ``TensorboardVisBackend`` to the config's visualizer (once).

    Its event files go to ``WORK_DIR/<timestamp>/vis_data``, beside the JSON
    scalars: ``tensorboard --logdir WORK_DIR``. Needs the optional
    ``tensorboard`` package (``pip install -e .[tensorboard]``).
    """
    visualizer = cfg.get('visualizer') or dict(type='Visualizer')
    backends = list(visualizer.get('vis_backends') or [dict(type='LocalVisBackend')])
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    cfg.visualizer = dict(visualizer, vis_backends=backends)
    return cfg


def pin_memory_where_useful(cfg: Config, accelerator: bool | None = None) -> Config:
    """Turn the loaders' ``pin_memory`` off where no accelerator is present.

    Pinned host memory only speeds up copies to a GPU; on a CPU-only machine
    PyTorch warns for every loader that asks for it, and nothing is gained.
    """
    if accelerator is None:
        import torch

        accelerator = torch.cuda.is_available()
    if not accelerator:
        for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            loader = cfg.get(name)
            if loader and loader.get('pin_memory'):
                loader['pin_memory'] = False
    return cfg
