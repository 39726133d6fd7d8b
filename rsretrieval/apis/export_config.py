"""The config of an exported model: it builds from the files of the model folder alone.

Every pretrained-weight reference is replaced (the weights come from ``model.safetensors``),
the tokenizers and open_clip architecture files it needs are saved in the folder, and the
training state (momentum encoders, ITC queue) is switched off.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config

from rsretrieval.registry import BACKBONES, FUSION_HEADS, MODELS, TEXT_ENCODERS
from rsretrieval.weights.pretrained import resolve_pretrained

#: mmengine's predefined variable for the folder of the config file being read.
FOLDER_VAR = '{{ fileDirname }}'
#: BertConfig entries that describe a saved file rather than the network.
_BERT_FILE_KEYS = frozenset(
    ('transformers_version', 'architectures', 'model_type', 'dtype', 'torch_dtype', 'id2label', 'label2id')
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

    Args:
        cfg: The training config.
        folder: The model folder; the tokenizers and open_clip configs are saved in it.

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


def drop_training_state(model_cfg: dict, trained: torch.nn.Module) -> dict:
    """Build the exported model without momentum encoders and ITC queue (training state).

    Sets ``queue_size=0`` and ``distill_alpha=0`` in ``model_cfg`` (in place)
    where ``trained`` holds such modules.

    Args:
        model_cfg: The ``model`` entry of the exported config.
        trained: The trained model.

    Returns:
        What was changed, with the trained values (``{}`` when nothing was).
    """
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
