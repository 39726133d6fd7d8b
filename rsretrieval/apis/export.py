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

This module puts the steps together; each has its module: :mod:`.export_config` (the
config), :mod:`.export_checks` (the exported model is the trained one),
:mod:`.safetensors_file`, :mod:`.model_card`, :mod:`.export_metadata`,
:mod:`.export_source`, :mod:`.metrics_file` and :mod:`.atomic_folder`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from mmengine.config import Config

from rsretrieval.registry import MODELS
from rsretrieval.utils import load_model_weights, merge_cfg_options, quiet_logs, read_config, register_all_modules
from rsretrieval.version import __version__

from .atomic_folder import staging_folder
from .export_checks import PROBE_CAPTIONS, ExportError, check_outputs, inference_state
from .export_config import FOLDER_VAR, drop_training_state, inference_config
from .export_metadata import FORMAT, FORMAT_VERSION, META_FILE, write_metadata
from .export_source import export_source
from .inference import CONFIG_FILE, WEIGHTS_FILE, embed_texts, init_model
from .metrics_file import read_metrics
from .model_card import CARD_FILE, write_card
from .safetensors_file import save_safetensors

__all__ = [
    'CARD_FILE',
    'FOLDER_VAR',
    'FORMAT',
    'FORMAT_VERSION',
    'META_FILE',
    'PROBE_CAPTIONS',
    'ExportError',
    'export_model',
    'inference_config',
    'is_model_folder',
    'read_metrics',
]

# export_model writes the metadata through this module's name, so that a test can make that
# last step fail (a full disk) and see that nothing is left.
_write_metadata = write_metadata


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
    with staging_folder(out) as tmp:
        info = _write_folder(tmp, cfg, trained)
        metrics = dict(metrics) if metrics else None
        info.update(name=out.name, source=export_source(config, checkpoint), metrics=metrics, license=license)
        write_card(tmp, info)
        _write_metadata(tmp, info)
    return out


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


def _write_folder(folder: Path, cfg: Config, trained: torch.nn.Module) -> dict:
    """config.py, tokenizer(s) and model.safetensors, checked against ``trained``; returns what
    the card and the metadata need."""
    export_cfg, replaced = inference_config(cfg, folder)
    dropped = drop_training_state(export_cfg.model, trained)
    header = (
        f'# Exported by rsretrieval {__version__} (tools/export_model.py). The model builds from this file\n'
        '# alone: no pretrained weights are read; its weights are model.safetensors beside it. Paths into\n'
        f"# the folder start with '{FOLDER_VAR}', which mmengine replaces with it when it reads this file.\n"
    )
    (folder / CONFIG_FILE).write_text(header + export_cfg.pretty_text, encoding='utf-8')
    with quiet_logs():
        exported = MODELS.build(read_config(str(folder / CONFIG_FILE)).model)
    state = inference_state(trained, exported)
    save_safetensors(state, folder / WEIGHTS_FILE, {'format': 'pt', 'model_type': str(cfg.model.type)})
    load_model_weights(exported, folder / WEIGHTS_FILE)  # strict, as every loader reads it
    check_outputs(trained, exported.eval())
    return dict(
        cfg=export_cfg,
        replaced=sorted(replaced),
        dropped=dropped,
        parameters=sum(p.numel() for p in exported.parameters()),
        embed_dim=int(embed_texts(exported, PROBE_CAPTIONS[:1]).shape[1]),
    )
