"""Loading pretrained weights into a module so that the result can be trusted.

:func:`load_pretrained` fills a module from a checkpoint and accounts for every
tensor on both sides:

- *loaded*: the checkpoint fills the model's tensor (as is, or *resized* by a
  rule of :mod:`rsretrieval.weights.resize`: relative-position tables for
  another window, position embeddings for another grid);
- *new*: the model's tensor has no counterpart in the checkpoint and the
  architecture declares it as its own (``new_in_architecture``);
- *dropped*: the checkpoint's tensor has no place in the model (a classifier
  head, buffers rebuilt from the window, parts the architecture does not have).

Anything else is an error (:class:`WeightLoadError`, one line): a tensor of
another shape that no rule resizes, or a model tensor that the checkpoint was
meant to fill but does not, so no tensor is ever left at its random
initialisation without saying so. The outcome is a :class:`LoadReport`, logged
as a few lines at INFO (the key lists at DEBUG).

The loader knows no architecture: converters (key renaming) and the
declarations of what is new live with each model.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import torch
from mmengine.dist import master_only
from mmengine.logging import MMLogger
from torch import nn

from rsretrieval.utils.checkpoint_errors import CheckpointError
from rsretrieval.utils.checkpoint_reading import extract_state_dict, load_checkpoint_file
from rsretrieval.utils.state_mismatch import StateMismatch, mismatch_report

from .hashing import file_sha256
from .resize import DEFAULT_RULES, DERIVED_BUFFERS, ResizeRule, find_rule, is_derived_buffer

#: Classifier heads: a checkpoint's head is dropped when the model has none.
CLASSIFIER_HEADS: tuple[str, ...] = ('head', 'head.*', 'fc.*', 'classifier.*')

#: Labels the report gives dropped tensors of any model, checked before the caller's.
BUILTIN_LABELS: dict[str, tuple[str, ...]] = {
    'classifier head': CLASSIFIER_HEADS,
    'buffers rebuilt from the window': DERIVED_BUFFERS,
}

#: ``fnmatch`` patterns, or ``{label: patterns}`` to name the groups in reports.
Patterns = Sequence[str] | Mapping[str, Sequence[str]]
Converter = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]

#: Weight files looked for when a folder (a Hugging Face snapshot) is given.
_FOLDER_FILES = ('model.safetensors', 'pytorch_model.bin', 'open_clip_pytorch_model.bin')


class WeightLoadError(CheckpointError):
    """Pretrained weights that do not fit the module, explained in one line."""


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did with every tensor.

    Keys are the model's state-dict names (``loaded``, ``resized``, ``new``) or
    the checkpoint's after conversion (``dropped``); a tensor the model holds
    under two names (shared modules) is counted once, under its first name.

    Attributes:
        target: Class name of the module filled.
        source: Name of the weights (``'swin-t-in1k'``, a path, ``'state dict'``).
        path: The file read, if any.
        sha256: Its SHA-256, if a file was read.
        loaded: Model tensors filled from the checkpoint, resized ones included.
        resized: ``{key: (rule name, shape change)}`` for those resized.
        new: Model tensors the architecture adds (left as initialised).
        dropped: ``{checkpoint key: group}`` for checkpoint tensors not used.
        new_groups: ``{group: count}`` of ``new``.
    """

    target: str
    source: str
    path: str | None = None
    sha256: str | None = None
    loaded: list[str] = field(default_factory=list)
    resized: dict[str, tuple[str, str]] = field(default_factory=dict)
    new: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    new_groups: dict[str, int] = field(default_factory=dict)

    @property
    def resized_groups(self) -> dict[str, int]:
        """``{'relative-position tables 13x13 -> 15x15': 12, ...}``."""
        return dict(Counter(f'{rule} {change}' for rule, change in self.resized.values()))

    @property
    def dropped_groups(self) -> dict[str, int]:
        """``{'classifier head': 2, ...}``."""
        return dict(Counter(self.dropped.values()))

    def header(self) -> str:
        """``'Gswin <- swin-t-in1k (/path/model.safetensors, sha256 1a2b3c4d)'``."""
        where = [self.path] if self.path and self.path != self.source else []
        if self.sha256:
            where.append(f'sha256 {self.sha256[:8]}')
        return f'{self.target} <- {self.source}' + (f' ({", ".join(where)})' if where else '')

    def summary(self) -> str:
        """The report in four lines: source, then loaded, new and dropped counts by group."""
        groups = self.resized_groups
        changes = next(iter(groups)) if len(groups) == 1 else _groups(groups, sep=': ')
        resized = f', {len(self.resized)} of them resized ({changes})' if self.resized else ''
        lines = [
            self.header(),
            f'  loaded {len(self.loaded)} tensors{resized}',
            f'  new in the architecture (initialised here): {_count(self.new_groups)}',
            f'  dropped from the checkpoint: {_count(self.dropped_groups)}',
        ]
        return '\n'.join(lines)

    def details(self) -> str:
        """Every key, by category (what the log shows at DEBUG)."""
        resized = [f'{k} ({rule} {change})' for k, (rule, change) in self.resized.items()]
        return '\n'.join(
            [
                f'{self.header()}: details',
                f'loaded: {", ".join(self.loaded) or "-"}',
                f'resized: {", ".join(resized) or "-"}',
                f'new: {", ".join(self.new) or "-"}',
                f'dropped: {", ".join(f"{k} ({g})" for k, g in self.dropped.items()) or "-"}',
            ]
        )


def _groups(counts: Mapping[str, int], limit: int = 4, sep: str = ' ') -> str:
    """``'a 12, b 2, 3 more groups (5 tensors)'``, largest first."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = [f'{name}{sep}{n}' for name, n in ranked[:limit]]
    rest = ranked[limit:]
    if rest:
        shown.append(f'{len(rest)} more groups ({sum(n for _, n in rest)} tensors)')
    return ', '.join(shown)


def _count(counts: Mapping[str, int]) -> str:
    total = sum(counts.values())
    return f'{total} ({_groups(counts)})' if total else 'none'


def module_kind(key: str) -> str:
    """The default group of a key: its module path, indices as ``*``.

    ``'stages.2.blocks.1.mlp.fc1.weight'`` -> ``'stages.*.blocks.*.mlp.fc1'``.
    """
    parts = key.split('.')
    kind = ['*' if p.isdigit() else p for p in parts[:-1]]
    return '.'.join(kind) or key


def _as_labels(patterns: Patterns) -> dict[str, tuple[str, ...]]:
    """``{label: patterns}``; plain patterns become their own (unlabelled) group."""
    if isinstance(patterns, Mapping):
        return {label: (p,) if isinstance(p, str) else tuple(p) for label, p in patterns.items()}
    return {'': (patterns,) if isinstance(patterns, str) else tuple(patterns)}  # '' = group by module kind


def _label(key: str, labels: Mapping[str, Sequence[str]]) -> str | None:
    """The first label whose patterns match ``key`` ('' for an unlabelled match), or None."""
    return next((label for label, pats in labels.items() if any(fnmatchcase(key, p) for p in pats)), None)


def _group(key: str, labels: Mapping[str, Sequence[str]]) -> str:
    return _label(key, labels) or module_kind(key)


# --------------------------------------------------------------------------- reading
def _weight_file(path: Path) -> Path:
    """``path``, or the weight file inside a model folder."""
    if not path.is_dir():
        return path
    for name in _FOLDER_FILES:
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f'{path}: no weight file in the folder (looked for {", ".join(_FOLDER_FILES)})')


def _read(
    path_or_state: str | os.PathLike | Mapping, prefix: str, source_name: str | None
) -> tuple[dict[str, torch.Tensor], str, str | None, str | None]:
    """``(state, source, path, sha256)``: the tensors under ``prefix`` and where they came from."""
    if isinstance(path_or_state, Mapping):
        return extract_state_dict(path_or_state, prefix), source_name or 'state dict', None, None
    path = _weight_file(Path(path_or_state).expanduser())
    state = extract_state_dict(load_checkpoint_file(path), prefix)
    return state, source_name or str(path), str(path), file_sha256(path)


# --------------------------------------------------------------------------- planning
@dataclass
class _Plan:
    """What to load and what the report and the checks need."""

    take: dict[str, torch.Tensor] = field(default_factory=dict)
    resized: dict[str, tuple[str, str]] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    bad_shapes: dict[str, str] = field(default_factory=dict)  # {key: one-line description}


def _aliases(module: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """The module's state dict and ``{first name: all names}`` of each distinct tensor."""
    own = module.state_dict(keep_vars=True)
    names: dict[int, list[str]] = {}
    for key, tensor in own.items():
        names.setdefault(id(tensor), []).append(key)  # shared modules: one tensor, several names
    return own, {group[0]: group for group in names.values()}


def _owner(module: nn.Module, key: str) -> nn.Module:
    return module.get_submodule(key.rpartition('.')[0]) if '.' in key else module


def _place(
    module: nn.Module,
    key: str,
    value: torch.Tensor,
    target: torch.Tensor,
    plan: _Plan,
    rules: Sequence[ResizeRule],
    replaceable: Callable[[str], bool],
) -> None:
    """Decide what happens to one checkpoint tensor whose name the model has."""
    if value.shape == target.shape:
        plan.take[key] = value
        return
    if is_derived_buffer(key):
        plan.dropped[key] = 'buffers rebuilt from the window'
        return
    shapes = f'{key}: checkpoint {tuple(value.shape)} vs model {tuple(target.shape)}'
    rule = find_rule(key, rules)
    if rule is None:
        if replaceable(key):  # the architecture declares its own tensor of this name
            plan.dropped[key] = 'replaced by the architecture'
        else:
            plan.bad_shapes[key] = f'{shapes}, no resize rule'
        return
    try:
        resized, change = rule.apply(value, tuple(target.shape), _owner(module, key))
    except ValueError as err:
        plan.bad_shapes[key] = f'{shapes}, the rule for {rule.name} does not apply: {err}'
        return
    if tuple(resized.shape) != tuple(target.shape):
        plan.bad_shapes[key] = f'{shapes}, the rule for {rule.name} gave {tuple(resized.shape)}'
        return
    plan.take[key], plan.resized[key] = resized, (rule.name, change)


def _plan(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    own: Mapping[str, torch.Tensor],
    new_labels: Mapping[str, Sequence[str]],
    labels: Mapping[str, Sequence[str]],
    rules: Sequence[ResizeRule],
) -> _Plan:
    plan = _Plan()
    drop_labels = {**BUILTIN_LABELS, **labels}  # the built-in groups are the narrower ones
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            plan.dropped[key] = 'not a tensor'
        elif key not in own:
            plan.dropped[key] = _group(key, drop_labels)
        else:
            _place(module, key, value, own[key], plan, rules, lambda k: _label(k, new_labels) is not None)
    return plan


# --------------------------------------------------------------------------- checks
def _first(keys: Sequence[str], n: int = 3) -> str:
    return ', '.join(keys[:n]) + (', ...' if len(keys) > n else '')


def _unfilled(
    plan: _Plan, groups: Mapping[str, list[str]], new_labels: Mapping[str, Sequence[str]]
) -> tuple[list[str], list[str], list[str]]:
    """``(loaded, new, missing)`` first names of the model's tensors."""
    loaded, new, missing = [], [], []
    for first, names in groups.items():
        if any(n in plan.take for n in names):
            loaded.append(first)
        elif any(_label(n, new_labels) is not None for n in names):
            new.append(first)
        elif not any(is_derived_buffer(n) or n.endswith('num_batches_tracked') for n in names):
            missing.append(first)
    return loaded, new, missing


def _n(count: int, noun: str) -> str:
    return f'{count} {noun}' + ('' if count == 1 else 's')


def _check(where: str, target: str, state: Mapping, plan: _Plan, loaded: list[str], missing: list[str]) -> None:
    """Raise WeightLoadError (one line) when the checkpoint does not fit."""
    if len(loaded) < len(missing):  # mostly unfilled: say what the file is rather than the first mismatch
        mismatch = StateMismatch(missing, list(plan.dropped), list(plan.bad_shapes), len(loaded) + len(missing))
        holds = f'holds {_n(len(state), "tensor")} ({_first(list(state))})'
        raise WeightLoadError(
            f'{mismatch_report(where, target, holds, mismatch)}: '
            'is it the checkpoint of another architecture, or only part of one?'
        )
    shapes = list(plan.bad_shapes.values())
    if shapes:
        more = f' (and {_n(len(shapes) - 1, "more tensor")} of another shape)' if shapes[1:] else ''
        raise WeightLoadError(f'{where}: {shapes[0]}{more}')
    if missing:
        raise WeightLoadError(
            f'{where} leaves {_n(len(missing), "tensor")} of {target} unfilled ({_first(missing)}): declare them '
            'in new_in_architecture if the architecture adds them, or fix the checkpoint or its converter'
        )


# --------------------------------------------------------------------------- entry point
def load_pretrained(
    module: nn.Module,
    path_or_state: str | os.PathLike | Mapping,
    *,
    convert: Converter | None = None,
    new_in_architecture: Patterns = (),
    prefix: str = '',
    source_name: str | None = None,
    labels: Mapping[str, Sequence[str]] | None = None,
    rules: Sequence[ResizeRule] = DEFAULT_RULES,
) -> LoadReport:
    """Fill ``module`` from pretrained weights, resizing what has a rule, and report.

    Args:
        module: The module to fill.
        path_or_state: A checkpoint file (``.safetensors``, or ``.pth``/``.bin``
            read with ``weights_only=True``), a model folder holding
            ``model.safetensors``/``pytorch_model.bin``, or a (state) dict.
        convert: Renames the checkpoint's keys onto the module's (applied after
            ``prefix``); keys it leaves unmapped are reported as dropped.
        new_in_architecture: ``fnmatch`` patterns over the module's state-dict
            names that the architecture adds (left as initialised when the
            checkpoint lacks them), or ``{label: patterns}`` to name their groups.
        prefix: Only checkpoint keys starting with it are used, with it removed.
        source_name: The weights' name in the report (default: the path).
        labels: ``{label: patterns}`` naming groups of dropped checkpoint keys
            (after ``convert``); other keys group by :func:`module_kind`.
        rules: Resize rules (default :data:`~rsretrieval.weights.resize.DEFAULT_RULES`).

    Returns:
        The :class:`LoadReport`; its :meth:`~LoadReport.summary` is logged at INFO.

    Raises:
        WeightLoadError: One line: a tensor of another shape that no rule
            resizes, model tensors the checkpoint leaves unfilled outside
            ``new_in_architecture``, or a checkpoint that fills nothing.
        FileNotFoundError, CheckpointError: The file is missing or unreadable.
    """
    state, source, path, sha = _read(path_or_state, prefix, source_name)
    if convert is not None:
        state = convert(state)
    new_labels = _as_labels(new_in_architecture)
    own, groups = _aliases(module)
    plan = _plan(module, state, own, new_labels, dict(labels or {}), rules)
    loaded, new, missing = _unfilled(plan, groups, new_labels)
    target = type(module).__name__
    _check(path or source, target, state, plan, loaded, missing)
    result = module.load_state_dict(plan.take, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys  # planned keys all exist in the model
    new_groups = dict(Counter(_label(k, new_labels) or module_kind(k) for k in new))
    report = LoadReport(target, source, path, sha, loaded, plan.resized, new, plan.dropped, new_groups)
    _log(report)
    return report


def _log(report: LoadReport) -> None:
    """The summary at INFO (one entry), the key lists at DEBUG."""
    logger = MMLogger.get_current_instance()
    logger.info(report.summary())
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(report.details())


# --------------------------------------------------------------------------- mmengine's init log
_SAME = 'The value is the same before and after calling `init_weights`'


def init_info_changes(module: nn.Module, infos: Mapping[nn.Parameter, dict]) -> tuple[Counter[str], int]:
    """``({how: count}, unchanged)`` over ``module``'s parameters from mmengine's init records.

    ``infos`` is mmengine's ``_params_init_info`` (``{param: {'init_info',
    'tmp_mean_value'}}``); a parameter counts as changed when mmengine recorded
    a change or its mean moved since the records were made. Weights a module
    loads after ``BaseModule.init_weights`` returns (as the backbones do) are
    not seen here: their load report says what they hold.
    """
    changed: Counter[str] = Counter()
    kept = 0
    for param in module.parameters():
        info = infos.get(param, {})
        text = str(info.get('init_info', '')).strip()
        before = info.get('tmp_mean_value')
        if text and not text.startswith(_SAME):
            changed[text] += 1
        elif before is not None and not torch.equal(param.data.mean().cpu(), before):
            changed[f'changed by init_weights of {type(module).__name__}'] += 1
        else:
            kept += 1
    return changed, kept


def init_info_summary(module: nn.Module, infos: Mapping[nn.Parameter, dict]) -> str:
    """One line in place of mmengine's per-parameter initialisation dump.

    ``'init_weights of CMPAGL: 310 of 420 parameter tensors changed (Initialized
    by user-defined `init_weights` in Gswin 135, ...), 110 unchanged'``.
    """
    changed, kept = init_info_changes(module, infos)
    n_changed = sum(changed.values())
    detail = f' ({_groups(changed)})' if changed else ''
    return (
        f'init_weights of {type(module).__name__}: {n_changed} of {n_changed + kept} parameter tensors '
        f'changed{detail}, {kept} unchanged'
    )


class ConciseInitInfo:
    """Mixin for mmengine ``BaseModule`` subclasses: one log line instead of mmengine's
    per-parameter initialisation dump.

    mmengine 0.10.7's ``BaseModule._dump_init_info`` (run by the top-level module
    at the end of ``init_weights``) writes three lines per parameter: straight
    into the log file when the logger has a ``FileHandler`` (whatever its level),
    otherwise at INFO on the console. Put this class before ``BaseModule`` in the
    bases of the top-level model to log :func:`init_info_summary` instead (the
    per-parameter lines go to DEBUG; so does the summary when nothing changed,
    as for a backbone that loads its weights after ``BaseModule.init_weights``).
    """

    @master_only
    def _dump_init_info(self) -> None:
        infos = getattr(self, '_params_init_info', {})
        logger = MMLogger.get_current_instance()
        changed, _ = init_info_changes(self, infos)  # type: ignore[arg-type]
        logger.log(logging.INFO if changed else logging.DEBUG, init_info_summary(self, infos))  # type: ignore[arg-type]
        if logger.isEnabledFor(logging.DEBUG):
            lines = (
                f'{name} {tuple(p.shape)}: {str(infos.get(p, {}).get("init_info", "")).strip()}'
                for name, p in self.named_parameters()  # type: ignore[attr-defined]
            )
            logger.debug('\n'.join(lines))
