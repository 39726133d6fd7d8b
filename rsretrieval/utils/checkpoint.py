"""Checkpoint I/O that keeps ``torch.load(weights_only=True)``.

mmengine 0.10.7 saves its ``MessageHub`` history as ``HistoryBuffer`` objects
holding numpy arrays (and, through ``__getstate__``, references to the class's
statistic functions). Under ``weights_only=True`` (torch's default since 2.6)
those need numpy reconstruction functions and ``builtins.getattr`` on the
allow-list, which would defeat the protection. Instead, :func:`to_safe_types`
turns that content into tensors, numbers and plain dicts before a checkpoint
is written (see ``SafeCheckpointHook``) and :func:`restore_history_buffers`
rebuilds the objects after loading: torch's default allow-list suffices.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

#: Marks a ``HistoryBuffer`` stored as a plain dict.
HISTORY_BUFFER_TAG = '__mmengine_history_buffer__'


def to_safe_types(obj: Any) -> Any:
    """Return ``obj`` rebuilt from tensors, numbers, strings and containers only.

    numpy arrays become tensors, numpy scalars Python numbers, and
    ``HistoryBuffer`` objects tagged dicts (see :func:`restore_history_buffers`).
    """
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {
            HISTORY_BUFFER_TAG: True,
            'log_history': torch.from_numpy(np.asarray(log)),
            'count_history': torch.from_numpy(np.asarray(count)),
            'max_length': int(obj.max_length),
        }
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return type(obj)((k, to_safe_types(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and not hasattr(obj, '_fields'):
        return type(obj)(to_safe_types(v) for v in obj)
    return obj


def restore_history_buffers(obj: Any) -> Any:
    """Inverse of :func:`to_safe_types` for ``HistoryBuffer``: rebuild the objects."""
    if isinstance(obj, Mapping):
        if obj.get(HISTORY_BUFFER_TAG):
            return HistoryBuffer(
                obj['log_history'].numpy().tolist(), obj['count_history'].numpy().tolist(), obj['max_length']
            )
        return type(obj)((k, restore_history_buffers(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and not hasattr(obj, '_fields'):
        return type(obj)(restore_history_buffers(v) for v in obj)
    return obj


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used, explained in one line that names the file."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The file holds Python objects outside ``torch.load(weights_only=True)``'s allow-list."""


_ANSI = re.compile(r'\x1b\[[0-9;]*m')


def load_checkpoint_file(path: str | os.PathLike, map_location: str | torch.device = 'cpu') -> dict:
    """Load a checkpoint safely: ``.safetensors`` or ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: The file does not exist.
        UnsafeCheckpointError: The file holds objects outside the allow-list
            (a ``pickle.UnpicklingError``); the message names the file, the
            object, and what to do instead of widening the allow-list.
        CheckpointError: The file is cut short or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    if path.suffix == '.safetensors':
        from safetensors.torch import load_file

        return load_file(str(path), device=str(map_location))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        detail = _ANSI.sub('', str(err))
        found = re.search(r'GLOBAL ([\w.]+)', detail) or re.search(r'Unsupported global: ([\w.]+)', detail)
        what = f' ({found.group(1)})' if found else ''
        raise UnsafeCheckpointError(
            f'{path}: refused to load objects outside the allow-list{what}: loading stays weights_only=True, '
            'which only reads tensors, Python containers, numbers and strings. If you trust the file, re-save '
            'its weights as plain tensors in a separate process '
            "(torch.save({'state_dict': sd}, 'clean.pth'), see docs/reliability.md); do not widen the "
            'allow-list with add_safe_globals.'
        ) from err
    except RuntimeError as err:
        text = str(err)
        if 'central directory' in text or 'zip archive' in text:
            raise CheckpointError(
                f'{path}: the checkpoint is incomplete (its zip archive is cut short, e.g. by a crash while it was '
                'saved); use an earlier checkpoint'
            ) from err
        raise


def _dict_call_keywords(node) -> dict:
    """The keyword nodes of a ``dict(...)`` call, or {}."""
    import ast

    if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'dict':
        return {k.arg: k.value for k in node.keywords if k.arg}
    return {}


def _saved_architecture(checkpoint: Mapping) -> str | None:
    """``'CMPAGL (backbone Gswin)'`` from the config text mmengine saved in the checkpoint's
    meta. The text is parsed, never executed (it comes from the file being checked)."""
    import ast

    cfg_text = (checkpoint.get('meta') or {}).get('cfg') if isinstance(checkpoint, Mapping) else None
    if not isinstance(cfg_text, str):
        return None
    try:
        tree = ast.parse(cfg_text)
    except SyntaxError:
        return None
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(getattr(t, 'id', None) == 'model' for t in stmt.targets):
            model = _dict_call_keywords(stmt.value)
            model_type = model.get('type')
            if not isinstance(model_type, ast.Constant):
                return None
            backbone = _dict_call_keywords(model.get('backbone')).get('type')
            suffix = f' (backbone {backbone.value})' if isinstance(backbone, ast.Constant) else ''
            return f'{model_type.value}{suffix}'
    return None


def _architecture_of(model: torch.nn.Module) -> str:
    backbone = getattr(model, 'backbone', None)
    return type(model).__name__ + (f' (backbone {type(backbone).__name__})' if backbone is not None else '')


def _key_groups(keys: list[str], n: int = 3) -> str:
    """The first ``n`` keys, shortened to three dotted parts."""
    shown = ['.'.join(k.split('.')[:3]) + ('...' if k.count('.') > 2 else '') for k in keys[:n]]
    return ', '.join(shown) + (', ...' if len(keys) > n else '')


def mismatch_summary(path: str | os.PathLike, checkpoint: Mapping, model: torch.nn.Module) -> str | None:
    """One line on why ``checkpoint`` does not fit ``model``, or None when it fits exactly.

    Names the architecture the checkpoint holds (from the config saved with it,
    when there is one) against the one the config builds, the counts of missing,
    unexpected and differently shaped tensors, and the first few of each.
    """
    state = extract_state_dict(checkpoint)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or shapes):
        return None
    saved = _saved_architecture(checkpoint)
    holds = f'holds {saved}' if saved else f'holds {len(state)} tensors'
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's {len(own)} tensors missing ({_key_groups(missing)})")
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected ({_key_groups(unexpected)})')
    if shapes:
        parts.append(f'{len(shapes)} of another shape ({_key_groups(shapes)})')
    return (
        f"{path} does not fit the config's model: the checkpoint {holds}, the config builds {_architecture_of(model)}; "
        + ('; '.join(parts))
    )


def load_model_weights(model: torch.nn.Module, path: str | os.PathLike, map_location: str = 'cpu') -> dict:
    """Load a checkpoint into ``model`` exactly (every tensor present, none extra).

    Returns:
        The checkpoint dict (``state_dict``, ``meta``, ...).

    Raises:
        CheckpointError: One line: the file is unsafe, incomplete, or does not
            fit the model (:func:`mismatch_summary`).
    """
    checkpoint = load_checkpoint_file(path, map_location)
    adapt = getattr(model, 'adapt_checkpoint', None)  # a model that reads other formats (CLIP releases)
    if adapt is not None:
        checkpoint = adapt(checkpoint, path)
    problem = mismatch_summary(path, checkpoint, model)
    if problem:
        raise CheckpointError(problem)
    model.load_state_dict(extract_state_dict(checkpoint), strict=True)
    return checkpoint


def extract_state_dict(checkpoint: Mapping, prefix: str = '') -> dict[str, torch.Tensor]:
    """The tensor dict of a checkpoint, optionally the sub-tree under ``prefix``.

    Accepts a raw state dict or one nested under ``state_dict`` / ``model`` /
    ``module`` (mmengine, timm and plain PyTorch conventions).
    """
    state = checkpoint
    for key in ('state_dict', 'model', 'module'):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return dict(state)


def load_weights(
    module: torch.nn.Module,
    path: str | os.PathLike,
    prefix: str = '',
    strict: bool = False,
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
    new_in_architecture: Sequence[str] | Mapping[str, Sequence[str]] = (),
) -> tuple[list[str], list[str]]:
    """Load pretrained weights into ``module``: :func:`rsretrieval.weights.loading.load_pretrained`.

    Args:
        module: Target module.
        path: ``.pth``/``.pt``/``.bin`` (loaded with ``weights_only=True``) or
            ``.safetensors`` file.
        prefix: Only keys starting with it are used, with it removed.
        strict: Also raise when the architecture adds tensors or the checkpoint
            holds unused ones.
        convert: Maps the checkpoint's keys onto the module's (e.g. timm Swin
            onto Gswin); applied after ``prefix``.
        new_in_architecture: Patterns of the module's tensors the checkpoint
            may lack (see ``load_pretrained``).

    Returns:
        ``(new_keys, dropped_keys)``: the module's tensors the checkpoint did not
        fill (all declared new) and the checkpoint's tensors not used.

    Raises:
        WeightLoadError: A tensor of another shape without a resize rule, or a
            tensor left unfilled that is not declared new (one line).
    """
    from rsretrieval.weights.loading import WeightLoadError, load_pretrained  # the weights package imports this one

    report = load_pretrained(module, path, convert=convert, new_in_architecture=new_in_architecture, prefix=prefix)
    missing, unexpected = list(report.new), list(report.dropped)
    if strict and (missing or unexpected):
        raise WeightLoadError(
            f'{path}: strict loading into {type(module).__name__}: {len(missing)} tensors not filled, '
            f'{len(unexpected)} unused ({report.summary().splitlines()[-1].strip()})'
        )
    return missing, unexpected


def load_checkpoint_into_runner(runner, path: str | os.PathLike) -> dict:
    """``runner.load_checkpoint`` for evaluation, strict, with one-line errors.

    Loads with :func:`load_model_weights` (safe, exact) into the runner's model
    (unwrapped from DDP), then calls the ``after_load_checkpoint`` hooks.

    Raises:
        CheckpointError: The file is unsafe, incomplete or does not fit.
    """
    from mmengine.model import is_model_wrapper

    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    checkpoint = load_model_weights(model, path)
    runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
    runner.logger.info(f'Weights loaded from {path}')
    return checkpoint


class CheckpointWriteError(CheckpointError):
    """A checkpoint (or its pointer) could not be written; earlier files are intact."""


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one.

    The bytes go to a temporary file in the same folder, are flushed and
    fsync'ed, then renamed over ``path`` (an atomic replacement on POSIX); the
    folder is fsync'ed so that the rename survives a power cut.

    Raises:
        CheckpointWriteError: The write failed (a full disk, a quota, a file
            size limit, ...): the message names the file, the bytes it needed
            and the free space; the temporary file is removed and ``path`` is
            left as it was.
    """
    path = Path(path)
    payload = data.encode('utf-8') if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        try:
            free = shutil.disk_usage(path.parent).free
            space = f'{free:,} bytes free on its device'
        except OSError:
            space = 'free space unknown'
        raise CheckpointWriteError(
            f'could not write {path}: it needs {len(payload):,} bytes, {space} '
            f'({err.strerror or err}); earlier checkpoints are intact'
        ) from err
    with contextlib.suppress(OSError):  # make the rename durable (not possible on every file system)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def find_resumable_checkpoint(work_dir: str | os.PathLike) -> tuple[str | None, list[str]]:
    """The newest checkpoint in ``work_dir`` that can be read, to resume from.

    Looks at the file ``last_checkpoint`` names, then at every periodic
    (``epoch_*.pth``) and preemption (``iter_*.pth``) checkpoint, newest first;
    best checkpoints hold no optimizer state and are not resumed from. A file
    that is cut short (no zip end record) or whose archive cannot be opened is
    passed over.

    Returns:
        ``(path or None, ["path: why it was passed over", ...])``.
    """
    import zipfile

    from rsretrieval.cli import checkpoint_problem

    work_dir = Path(work_dir)
    candidates: list[Path] = []
    pointer = work_dir / 'last_checkpoint'
    if pointer.is_file():
        named = pointer.read_text().strip()
        if named:
            candidates.append(Path(named))
    periodic = [*work_dir.glob('epoch_*.pth'), *work_dir.glob('iter_*.pth')]
    candidates += sorted(periodic, key=lambda p: p.stat().st_mtime, reverse=True)
    skipped, seen = [], set()
    for path in candidates:
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        problem = checkpoint_problem(str(path))
        if problem is None and zipfile.is_zipfile(path):
            try:
                with zipfile.ZipFile(path) as archive:
                    archive.namelist()
            except (zipfile.BadZipFile, OSError) as err:
                problem = f'checkpoint is unreadable: {path} ({err})'
        if problem is None:
            return str(path), skipped
        skipped.append(problem)
    return None, skipped


def remove_stale_temporaries(folder: str | os.PathLike) -> list[str]:
    """Delete the temporary files of :func:`atomic_write` left by processes that died
    mid-write (their process id no longer runs); they are never valid checkpoints.

    Returns:
        The removed paths.
    """
    removed = []
    for path in Path(folder).glob('.*.tmp-*'):
        pid = path.name.rsplit('.tmp-', 1)[-1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still running: its save is in progress
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # another user's live process
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(str(path))
    return removed
