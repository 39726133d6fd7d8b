"""A trained model as a self-contained folder: the form in which a lab shares it.

``export_model(CONFIG, CHECKPOINT, OUT_DIR)`` (or ``tools/export_model.py``) writes::

    OUT_DIR/
        config.py          the full config; its model builds with no pretrained file and no network
        model.safetensors  the weights, for inference (no momentum encoders, no ITC queue)
        tokenizer/         the BERT tokenizer (models with a BERT text encoder)
        open_clip/         open_clip_config.json of a 'local-dir:' CLIP architecture (when there is one)
        README.md          the model card (Hugging Face front matter)
        rsretrieval.json   machine-readable metadata: versions, commit, sha256 of each file, metrics

``init_model(OUT_DIR)``, ``tools/test.py OUT_DIR`` and ``rsretrieval-retrieve index OUT_DIR ...``
load it; uploaded to the Hugging Face Hub, ``hf-hub:ORG/NAME`` names it (docs/sharing.md).

Paths inside the folder are written as ``{{ fileDirname }}/tokenizer``: mmengine replaces
``{{ fileDirname }}`` with the folder of the config file when it reads the file, so the
folder can be moved, renamed or downloaded anywhere.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config

from rsretrieval.registry import BACKBONES, FUSION_HEADS, MODELS, TEXT_ENCODERS
from rsretrieval.utils import (
    load_model_weights,
    merge_cfg_options,
    quiet_logs,
    read_config,
    register_all_modules,
    resolve_pretrained,
)
from rsretrieval.version import __version__

from .inference import CONFIG_FILE, WEIGHTS_FILE, embed_texts, init_model

FORMAT = 'rsretrieval-model'
FORMAT_VERSION = 1
CARD_FILE = 'README.md'
META_FILE = 'rsretrieval.json'
#: mmengine's predefined variable for the folder of the config file being read.
FOLDER_VAR = '{{ fileDirname }}'
#: Captions both models embed before an export is published: the same weights must give the same numbers.
PROBE_CAPTIONS = ('a bridge over a river', 'many buildings and some green trees beside a road')
#: Metric names of ``RetrievalRecall`` (``raw/`` in front: before a reranker).
_METRIC_KEY = re.compile(r'^(raw/)?((i2t|t2i)_R@\d+|mR)$')
#: BertConfig entries that describe a saved file rather than the network.
_BERT_FILE_KEYS = frozenset(
    ('transformers_version', 'architectures', 'model_type', 'dtype', 'torch_dtype', 'id2label', 'label2id')
)


class ExportError(RuntimeError):
    """The exported folder would not reproduce the model; nothing was written."""


def is_model_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding an exported model (``config.py`` and ``model.safetensors``)."""
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def export_model(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    metrics: Mapping | str | os.PathLike | None = None,
    overwrite: bool = False,
    cfg_options: dict | None = None,
    license: str | None = None,
) -> Path:
    """Write a trained model as a self-contained folder (layout: this module's docstring).

    The folder is written beside ``out_dir`` under a temporary name, checked
    (its config builds a model that loads ``model.safetensors`` strictly and
    embeds captions exactly as the trained model does) and only then renamed
    to ``out_dir``: a failed export leaves nothing, and an ``out_dir`` it
    replaces stays as it was.

    Args:
        config: The training config.
        checkpoint: A checkpoint of that config's model.
        out_dir: The folder to write; it must not exist or be empty.
        metrics: Evaluation results for the card: a dict or a JSON file
            (``tools/test.py --dump-metrics``, mmengine's ``*.json`` logs);
            see :func:`read_metrics`. None: the card says "not evaluated".
        overwrite: Replace an existing export in ``out_dir``.
        cfg_options: Overrides, as ``--cfg-options``.
        license: License identifier for the card (e.g. ``'apache-2.0'``).

    Returns:
        ``out_dir``.

    Raises:
        FileExistsError: ``out_dir`` is not empty (and ``overwrite`` is off,
            or it holds something other than an export).
        CheckpointError: The checkpoint does not fit the config.
        ExportError: The exported model would differ from the trained one.
        OSError: ``out_dir`` or its temporary sibling cannot be written.
    """
    out = Path(out_dir).absolute()
    _check_destination(out, overwrite)
    if metrics is not None and not isinstance(metrics, Mapping):
        metrics = read_metrics(metrics)
    register_all_modules()
    cfg = merge_cfg_options(read_config(str(config)), cfg_options)
    trained = init_model(cfg, checkpoint, quiet=True)
    with _staging_folder(out) as tmp:
        info = _write_folder(tmp, cfg, trained)
        metrics = dict(metrics) if metrics else None
        info.update(name=out.name, source=_source(config, checkpoint), metrics=metrics, license=license)
        _write_card(tmp, info)
        _write_metadata(tmp, info)
    return out


# ------------------------------------------------------------------------- destination
def _check_destination(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f'{out} is a file: give a folder to export into')
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(f'{out} is not empty: remove it, choose another folder, or pass overwrite (--overwrite)')
    if not (out / META_FILE).is_file() and not is_model_folder(out):
        # overwrite replaces an earlier export only, never an arbitrary folder given by mistake
        raise FileExistsError(f'{out} is not empty and holds no exported model: it is not overwritten')


@contextlib.contextmanager
def _staging_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out``, renamed to ``out`` when the block succeeds; when it
    fails, removed with the parents of ``out`` that it created."""
    created = _make_parents(out.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.export-', dir=out.parent))
    try:
        yield tmp
        _usual_permissions(tmp)
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # deepest first; only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those created, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        for created in missing:
            with contextlib.suppress(OSError):
                created.rmdir()
        raise
    return missing


def _usual_permissions(folder: Path) -> None:
    """Give the folder and its files the permissions of any new file (``mkdtemp`` and
    safetensors create them private)."""
    umask = os.umask(0o022)  # reading the umask means setting it: it is put back at once
    os.umask(umask)
    for path in (folder, *folder.rglob('*')):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _publish(tmp: Path, out: Path) -> None:
    """Rename the finished folder to ``out``; an existing ``out`` is swapped out, then removed."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.with_name(f'.{out.name}.replaced-{os.getpid()}')
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------- folder content
def _write_folder(folder: Path, cfg: Config, trained: torch.nn.Module) -> dict:
    """config.py, tokenizer(s) and model.safetensors, checked against ``trained``; returns what
    the card and the metadata need."""
    export_cfg, replaced = inference_config(cfg, folder)
    dropped = _drop_training_state(export_cfg.model, trained)
    header = (
        f'# Exported by rsretrieval {__version__} (tools/export_model.py). The model builds from this file\n'
        '# alone: no pretrained weights are read; its weights are model.safetensors beside it. Paths into\n'
        f"# the folder start with '{FOLDER_VAR}', which mmengine replaces with it when it reads this file.\n"
    )
    (folder / CONFIG_FILE).write_text(header + export_cfg.pretty_text, encoding='utf-8')
    with quiet_logs():
        exported = MODELS.build(read_config(str(folder / CONFIG_FILE)).model)
    state = _inference_state(trained, exported)
    _save_safetensors(state, folder / WEIGHTS_FILE, {'format': 'pt', 'model_type': str(cfg.model.type)})
    load_model_weights(exported, folder / WEIGHTS_FILE)  # strict, as every loader reads it
    _check_outputs(trained, exported.eval())
    return dict(
        cfg=export_cfg,
        replaced=sorted(replaced),
        dropped=dropped,
        parameters=sum(p.numel() for p in exported.parameters()),
        embed_dim=int(embed_texts(exported, PROBE_CAPTIONS[:1]).shape[1]),
    )


def inference_config(cfg: Config, folder: str | os.PathLike) -> tuple[Config, set[str]]:
    """A copy of ``cfg`` whose model builds from the files in ``folder`` only.

    Every pretrained-weight reference of ``cfg.model`` is replaced: BERT text
    encoders and fusion heads are built from their ``BertConfig`` (read from the
    pretrained folder) with ``pretrained=None`` and the tokenizer saved in
    ``folder``; image backbones, CLIP towers and ``init_cfg=Pretrained`` load
    nothing; a ``'local-dir:'`` open_clip architecture reads the copy of its
    ``open_clip_config.json`` in ``folder``. Top-level variables that named those
    weights, ``load_from``, ``resume`` and ``work_dir`` are dropped. The data
    settings stay as they were.

    Returns:
        ``(config, the weight references replaced)``.
    """
    as_dict = cfg.to_dict()
    saved: dict[str, str] = {}
    replaced = _rewrite_weights(as_dict['model'], Path(folder), saved)
    for key in ('load_from', 'resume', 'work_dir', 'expect_pretrained'):
        as_dict.pop(key, None)
    for key, value in list(as_dict.items()):
        if key != 'model' and isinstance(value, str) and value in replaced:
            del as_dict[key]  # e.g. text_weights = 'minilm-l6': it would only mislead now
    return Config(as_dict), replaced


def _component_class(name: Any) -> type | None:
    if not isinstance(name, str):
        return None
    for registry in (TEXT_ENCODERS, FUSION_HEADS, BACKBONES, MODELS):
        with contextlib.suppress(Exception):
            cls = registry.get(name)
            if cls is not None:
                return cls
    return None


def _rewrite_weights(node: Any, folder: Path, saved: dict[str, str]) -> set[str]:
    """Replace the weight references under ``node`` in place (see :func:`inference_config`)."""
    from rsretrieval.models.fusion_heads.base_fusion_head import BertFusionHead
    from rsretrieval.models.text_encoders.bert import DEFAULT_TOKENIZER, BertTextEncoder

    if isinstance(node, (list, tuple)):
        return set().union(*(_rewrite_weights(v, folder, saved) for v in node))
    if not isinstance(node, dict):
        return set()
    replaced = set().union(*(_rewrite_weights(v, folder, saved) for k, v in node.items() if k != 'init_cfg'))
    cls = _component_class(node.get('type')) or object
    pretrained = node.get('pretrained')
    if issubclass(cls, BertTextEncoder):
        tokenizer = node.get('tokenizer') or pretrained or DEFAULT_TOKENIZER
        node['tokenizer'] = f'{FOLDER_VAR}/{_save_tokenizer(tokenizer, folder, saved)}'
        replaced.add(str(tokenizer))
        if pretrained is not None:
            node['config'] = _bert_config(pretrained, node.get('num_layers'))
    elif issubclass(cls, BertFusionHead) and pretrained is not None:
        node['config'] = _bert_config(pretrained)
    arch = node.get('arch')
    if isinstance(arch, str) and arch.startswith('local-dir:'):
        node['arch'] = f'local-dir:{FOLDER_VAR}/{_copy_open_clip_config(arch, folder, saved)}'
        replaced.add(arch)
    if pretrained is not None:
        node['pretrained'] = None
        replaced.add(str(pretrained))
    if 'init_cfg' in node:
        node['init_cfg'], dropped = _without_pretrained_init(node['init_cfg'])
        replaced |= dropped
    return replaced


def _without_pretrained_init(init_cfg: Any) -> tuple[Any, set[str]]:
    """``init_cfg`` without its ``type='Pretrained'`` entries (the checkpoint they name)."""
    entries = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    kept = [e for e in entries if not (isinstance(e, dict) and e.get('type') == 'Pretrained')]
    dropped = {str(e.get('checkpoint')) for e in entries if e not in kept}
    if isinstance(init_cfg, (list, tuple)):
        return kept, dropped
    return (kept[0] if kept else None), dropped


def _bert_config(pretrained: str | os.PathLike, num_layers: int | None = None) -> dict:
    """The ``BertConfig`` arguments of a pretrained BERT folder (``num_layers``: kept layers only)."""
    from transformers import BertConfig

    config = BertConfig.from_pretrained(resolve_pretrained(pretrained)).to_diff_dict()
    config = {k: v for k, v in config.items() if not k.startswith('_') and k not in _BERT_FILE_KEYS}
    if num_layers is not None:
        config['num_hidden_layers'] = int(num_layers)  # the encoder keeps these; the build skips the rest
    return config


def _new_name(base: str, saved: dict[str, str]) -> str:
    """``base``, then ``base-2``, ``base-3``, ... for further sources of the same kind."""
    n = sum(1 for name in saved.values() if name.split('-')[0] == base)
    return base if n == 0 else f'{base}-{n + 1}'


def _save_tokenizer(source: str | os.PathLike, folder: Path, saved: dict[str, str]) -> str:
    """Save the tokenizer of ``source`` in ``folder`` (once per source): its folder name."""
    if str(source) not in saved:
        from transformers import BertTokenizerFast

        name = _new_name('tokenizer', saved)
        BertTokenizerFast.from_pretrained(resolve_pretrained(source)).save_pretrained(folder / name)
        saved[str(source)] = name
    return saved[str(source)]


def _copy_open_clip_config(arch: str, folder: Path, saved: dict[str, str]) -> str:
    """Copy the ``open_clip_config.json`` of a ``'local-dir:PATH'`` architecture: its folder name."""
    if arch not in saved:
        name = _new_name('open_clip', saved)
        (folder / name).mkdir()
        shutil.copy2(Path(arch[len('local-dir:') :]) / 'open_clip_config.json', folder / name)
        saved[arch] = name
    return saved[arch]


def _drop_training_state(model_cfg: dict, trained: torch.nn.Module) -> dict:
    """Build the exported model without momentum encoders and ITC queue (training state):
    ``queue_size=0`` and ``distill_alpha=0``. Returns what was changed, with the trained values."""
    from rsretrieval.models.utils.momentum import FeatureQueue, MomentumCopy

    modules = [n for n, m in trained.named_modules() if isinstance(m, (MomentumCopy, FeatureQueue))]
    if not modules:
        return {}
    cls = _component_class(model_cfg.get('type'))
    params = inspect.signature(cls).parameters if cls is not None else {}
    dropped: dict[str, Any] = dict(modules=modules)
    for key, value in (('queue_size', 0), ('distill_alpha', 0.0)):
        if key in model_cfg or key in params:
            default = params[key].default if key in params else None
            dropped[key] = model_cfg.get(key, default)
            model_cfg[key] = value
    return dropped


def _inference_state(trained: torch.nn.Module, exported: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trained tensors that the exported model holds; only training state may be left out."""
    from rsretrieval.models.utils.momentum import FeatureQueue, MomentumCopy

    source, own = trained.state_dict(), exported.state_dict()
    missing = [k for k in own if k not in source]
    shapes = [k for k in own if k in source and source[k].shape != own[k].shape]
    training = tuple(f'{n}.' for n, m in trained.named_modules() if isinstance(m, (MomentumCopy, FeatureQueue)))
    lost = [k for k in source if k not in own and not k.startswith(training)]
    if missing or shapes or lost:
        raise ExportError(
            'the exported config does not build the trained model: '
            f'{len(missing)} tensors it lacks ({missing[:3]}), {len(shapes)} of another shape ({shapes[:3]}), '
            f'{len(lost)} it would lose ({lost[:3]})'
        )
    return {k: source[k] for k in own}


def _save_safetensors(state: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Save every key, tied tensors included (safetensors refuses shared storage: tied
    tensors are cloned, so that a strict load finds each name)."""
    from safetensors.torch import save_file

    tensors, storages = {}, set()
    for key, value in state.items():
        tensor = value.detach().cpu().contiguous()
        ptr = tensor.untyped_storage().data_ptr()
        if ptr in storages or tensor.numel() == 0:
            tensor = tensor.clone()
        storages.add(tensor.untyped_storage().data_ptr())
        tensors[key] = tensor
    save_file(tensors, str(path), metadata=metadata)


def _check_outputs(trained: torch.nn.Module, exported: torch.nn.Module) -> None:
    """Both models embed :data:`PROBE_CAPTIONS` identically (the BERT config and the
    tokenizer were rebuilt: this is where a difference would show)."""
    with torch.no_grad():
        before = embed_texts(trained.eval(), PROBE_CAPTIONS)
        after = embed_texts(exported, PROBE_CAPTIONS)
    if before.shape != after.shape or not torch.equal(before, after):
        gap = (before - after).abs().max().item() if before.shape == after.shape else 'shape'
        raise ExportError(f'the exported model embeds captions differently from the trained one (max gap {gap})')


# ------------------------------------------------------------------------------ metrics
def read_metrics(source: str | os.PathLike) -> dict:
    """The retrieval metrics of a JSON file.

    Accepts ``tools/test.py --dump-metrics`` output (``{"mR": ..., "raw/mR": ...}``;
    with ``--rerank`` the plain keys are the reranked results and ``raw/`` ones
    the raw), and mmengine's JSON logs (one object per line: the last one
    holding retrieval metrics; ``test/`` or ``val/`` prefixes are removed). A
    string entry ``"reranker"`` (e.g. ``"SMR"``) names the reranked row.

    Raises:
        ValueError: The file holds no retrieval metric.
    """
    text = Path(source).read_text(encoding='utf-8').strip()
    try:
        records = [json.loads(text)]
    except json.JSONDecodeError:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    for record in reversed(records):
        metrics = _retrieval_metrics(record) if isinstance(record, dict) else {}
        if metrics:
            if isinstance(record.get('reranker'), str):
                metrics['reranker'] = record['reranker']
            return metrics
    raise ValueError(f'{source}: no retrieval metric (i2t_R@K, t2i_R@K, mR) in it')


def _retrieval_metrics(record: dict) -> dict:
    out = {}
    for key, value in record.items():
        name = re.sub(r'^(test|val)/', '', str(key))
        if _METRIC_KEY.match(name) and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


# ------------------------------------------------------------------- card and metadata
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _code_commit() -> tuple[str, bool | None]:
    """``(git commit of the rsretrieval code, uncommitted changes)``; ``('unknown', None)``
    outside a git checkout (an installed package)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / '.git').exists():
        return 'unknown', None
    run = dict(cwd=root, capture_output=True, text=True, timeout=30)
    try:
        head = subprocess.run(['git', 'rev-parse', 'HEAD'], **run)
        status = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], **run)
    except (OSError, subprocess.SubprocessError):
        return 'unknown', None
    if head.returncode != 0:
        return 'unknown', None
    return head.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None


def _source(config: str | os.PathLike, checkpoint: str | os.PathLike) -> dict:
    commit, dirty = _code_commit()
    return dict(
        config=str(config),
        checkpoint=Path(checkpoint).name,
        checkpoint_sha256=_sha256(Path(checkpoint)),
        commit=commit,
        uncommitted_changes=dirty,
        rsretrieval_version=__version__,
        exported=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    )


def _data_rows(cfg: Config) -> list[dict]:
    rows = []
    for split in ('train', 'val', 'test'):
        dataset = (cfg.get(f'{split}_dataloader') or {}).get('dataset') or {}
        if dataset:
            keys = ('type', 'data_root', 'ann_file', 'split')
            rows.append(dict(loader=split, **{k: dataset.get(k) for k in keys}))
    return rows


def _dataset_names(rows: list[dict]) -> list[str]:
    """Dataset names for the card's front matter: ``dataset_RSITMD.json`` -> ``rsitmd``."""
    names = []
    for row in rows:
        stem = Path(str(row.get('ann_file') or '')).stem
        name = stem[len('dataset_') :] if stem.startswith('dataset_') else (stem or str(row.get('type') or ''))
        if name and name.lower() not in names:
            names.append(name.lower())
    return names


def _write_metadata(folder: Path, info: dict) -> None:
    files = sorted(p for p in folder.rglob('*') if p.is_file() and p.name != META_FILE)
    cfg = info['cfg']
    meta = dict(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        model_type=str(cfg.model.type),
        embed_dim=info['embed_dim'],
        parameters=info['parameters'],
        **info['source'],
        license=info['license'],
        files={p.relative_to(folder).as_posix(): _sha256(p) for p in files},
        training_state_left_out=info['dropped'] or None,
        weights_replaced=info['replaced'],
        data=_data_rows(cfg),
        metrics=info['metrics'],
    )
    (folder / META_FILE).write_text(json.dumps(meta, indent=1) + '\n', encoding='utf-8')


def _write_card(folder: Path, info: dict) -> None:
    cfg, source = info['cfg'], info['source']
    rows = _data_rows(cfg)
    front = ['---', 'library_name: rsretrieval']
    if info['license']:
        front.append(f'license: {json.dumps(info["license"])}')
    tags = ['rsretrieval', 'remote-sensing', 'image-text-retrieval', 'cross-modal-retrieval', str(cfg.model.type)]
    front += ['tags:', *(f'- {json.dumps(t.lower())}' for t in tags)]
    if names := _dataset_names(rows):
        front += ['datasets:', *(f'- {json.dumps(n)}' for n in names)]
    commit = source['commit'] + (' (with uncommitted changes)' if source['uncommitted_changes'] else '')
    sections = [
        '\n'.join([*front, '---']),
        f'# {info["name"]}\n\n{cfg.model.type} model for remote-sensing text-image retrieval, '
        f'exported by rsretrieval {source["rsretrieval_version"]}.',
        _architecture_section(cfg.model, info),
        _data_section(rows),
        _metrics_section(info['metrics']),
        '## Provenance\n\n'
        f'- code: rsretrieval {source["rsretrieval_version"]}, git commit `{commit}`\n'
        f'- exported: {source["exported"][:10]}, from the config `{source["config"]}` and the checkpoint '
        f'`{source["checkpoint"]}` (sha256 `{source["checkpoint_sha256"]}`)\n'
        f'- `{WEIGHTS_FILE}` sha256: `{_sha256(folder / WEIGHTS_FILE)}`\n'
        f'- every file and its sha256: `{META_FILE}`',
        _usage_section(info['name']),
    ]
    (folder / CARD_FILE).write_text('\n\n'.join(sections) + '\n', encoding='utf-8')


def _describe(node: dict) -> str:
    """``Type (arg=value, ...)`` of a component config: its scalar arguments."""
    args = {k: v for k, v in node.items() if k != 'type' and not isinstance(v, (dict, list)) and v is not None}
    args.pop('tokenizer', None)
    bert = node.get('config') or {}
    for key in ('hidden_size', 'num_hidden_layers', 'vocab_size'):
        if key in bert and key not in args:
            args[key] = bert[key]
    inner = ', '.join(f'{k}={v}' for k, v in args.items())
    return f'{node["type"]} ({inner})' if inner else str(node['type'])


def _architecture_section(model_cfg: dict, info: dict) -> str:
    rows = [('architecture', str(model_cfg['type'])), ('parameters', f'{info["parameters"]:,}')]
    rows.append(('embedding width', str(info['embed_dim'])))
    for key, value in model_cfg.items():
        if isinstance(value, dict) and 'type' in value and key != 'data_preprocessor':
            rows.append((key, _describe(value)))
    table = '\n'.join(f'| {k} | {v} |' for k, v in rows)
    text = f'## Model\n\n| | |\n|---|---|\n{table}'
    dropped = info['dropped']
    if dropped:
        text += (
            f'\n\nLeft out as training state: the momentum encoders and the ITC queue '
            f'({", ".join(dropped["modules"])}); trained with queue_size={dropped.get("queue_size")}, '
            f'distill_alpha={dropped.get("distill_alpha")}. Retrieval never uses them. To fine-tune with them, '
            'set these back (`--cfg-options model.queue_size=...`): the momentum encoders start as copies of '
            'the encoders, the queue empty.'
        )
    return text


def _data_section(rows: list[dict]) -> str:
    if not rows:
        return '## Training data\n\nThe config names no dataset.'
    lines = ['| loader | dataset | annotations | split | data_root |', '|---|---|---|---|---|']
    for r in rows:
        lines.append(f'| {r["loader"]} | {r["type"]} | {r["ann_file"]} | {r["split"]} | {r["data_root"]} |')
    return (
        '## Training data\n\nAs in the training config (`config.py`); evaluating elsewhere: '
        '`--cfg-options data_root=PATH`.\n\n' + '\n'.join(lines)
    )


def _metric_order(name: str) -> tuple:
    direction = {'i2t': 0, 't2i': 1}.get(name[:3], 2)
    k = re.search(r'R@(\d+)', name)
    return direction, int(k.group(1)) if k else 0


def _metrics_section(metrics: Mapping | None) -> str:
    if not metrics:
        return '## Results\n\nNot evaluated: no metrics were given to the export.'
    numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    names = sorted({k.removeprefix('raw/') for k in numeric}, key=_metric_order)
    if any(k.startswith('raw/') for k in numeric):
        rows = [('raw', 'raw/'), (f'+ {metrics.get("reranker", "reranker")}', '')]
    else:
        rows = [('raw', '')]
    head = '| | ' + ' | '.join(names) + ' |\n|---|' + '---|' * len(names)
    body = []
    for label, prefix in rows:
        cells = [f'{numeric[prefix + n]:.2f}' if prefix + n in numeric else '-' for n in names]
        body.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    return '## Results\n\nRecall@K (%) and mR as given to the export.\n\n' + head + '\n' + '\n'.join(body)


def _usage_section(name: str) -> str:
    return (
        '## Use\n\n'
        '```python\n'
        'from rsretrieval.apis import embed_texts, init_model\n'
        f"model = init_model('{name}')  # this folder; or 'hf-hub:ORG/NAME' for its Hub copy\n"
        "embeddings = embed_texts(model, ['a bridge over a river'])  # (1, E), L2-normalised\n"
        '```\n\n'
        'Evaluate it, or index an image archive with it:\n\n'
        '```bash\n'
        f'python tools/test.py {name} --cfg-options data_root=PATH/TO/DATASET\n'
        f'rsretrieval-retrieve index {name} IMAGE_DIR INDEX_DIR\n'
        '```'
    )
