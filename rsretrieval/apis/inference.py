"""Using a trained model outside the Runner: build it, load its weights, encode files."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import MMLogger
from torch.utils.data import DataLoader, Dataset

from rsretrieval.engine.stop_signals import worker_ignoring_stop_signals
from rsretrieval.models.retrievers import BaseRetriever
from rsretrieval.registry import MODELS
from rsretrieval.utils import (
    ConfigError,
    load_model_weights,
    merge_cfg_options,
    quiet_logs,
    read_config,
    register_all_modules,
)

from .fast_encoding import build_image_encoder

#: The files of a model folder written by :func:`rsretrieval.apis.export_model`.
CONFIG_FILE = 'config.py'
WEIGHTS_FILE = 'model.safetensors'


def model_folder_files(folder: str | os.PathLike) -> tuple[Path, Path]:
    """``(config.py, model.safetensors)`` of an exported model folder.

    Raises:
        ConfigError: ``folder`` has no ``config.py`` (not an exported model).
    """
    folder = Path(folder)
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise ConfigError(
            f'{folder} is a folder but not an exported model (no {CONFIG_FILE}): give a config file, '
            'or export a model folder with tools/export_model.py'
        )
    return config, folder / WEIGHTS_FILE


def _hub_folder(spec: str) -> Path:
    """The local snapshot folder of ``hf-hub:ORG/NAME`` (a Hub repo holding an exported model)."""
    try:
        from rsretrieval.weights.resolver import resolve_weights
    except ModuleNotFoundError as err:
        if err.name not in ('rsretrieval.weights', 'rsretrieval.weights.resolver'):
            raise  # the resolver is there but needs something missing: say that instead
        raise ConfigError(
            f"{spec}: 'hf-hub:' models are fetched by rsretrieval.weights.resolver, which this installation "
            'lacks; download the repo (hf download ORG/NAME --local-dir DIR) and give DIR'
        ) from err
    return Path(resolve_weights(spec).path)


def _model_source(
    config: str | os.PathLike, checkpoint: str | os.PathLike | None
) -> tuple[str, str | os.PathLike | None]:
    """The config file and checkpoint that ``config`` names: itself, or the files of a model
    folder (local, or ``hf-hub:ORG/NAME``); an explicit ``checkpoint`` is kept."""
    path = str(config)
    if path.startswith('hf-hub:') and not os.path.exists(path):
        path = str(_hub_folder(path))
    if not os.path.isdir(path):
        return path, checkpoint
    config_file, weights = model_folder_files(path)
    if checkpoint is None and not weights.is_file():
        raise ConfigError(f'{path}: the model folder has no {WEIGHTS_FILE}')
    return str(config_file), weights if checkpoint is None else checkpoint


def init_model(
    config: str | os.PathLike | Config,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device = 'cpu',
    cfg_options: dict | None = None,
    quiet: bool = False,
) -> BaseRetriever:
    """Build the retriever of a config and load a checkpoint into it, in eval mode.

    The checkpoint is read with ``torch.load(weights_only=True)`` (or as
    safetensors) and must fit the model exactly: a missing or unexpected key is
    an error (``CheckpointError``, one line naming the architectures and the
    keys), not a partly random model. A config that cannot be read, or an
    option it cannot take, raises ``ConfigError``.

    Args:
        config: Config file or object; or a model folder written by
            :func:`~rsretrieval.apis.export_model` (its ``config.py``, and its
            ``model.safetensors`` when ``checkpoint`` is None); or
            ``'hf-hub:ORG/NAME'``, a Hub repo holding such a folder.
        checkpoint: Checkpoint of this config's model (mmengine ``.pth``, a
            plain state dict or ``.safetensors``); ``None`` keeps the initial
            weights (a model folder: its own weights).
        device: Where the model runs.
        cfg_options: Overrides, as ``--cfg-options`` (``data_root`` and
            ``text_weights`` propagate).
        quiet: Log only warnings while the model is built and loaded (the
            tools' default: their result first; ``--verbose`` turns it off).
    """
    register_all_modules()
    if not isinstance(config, Config):
        config, checkpoint = _model_source(config, checkpoint)
    cfg = read_config(str(config)) if not isinstance(config, Config) else config
    cfg = merge_cfg_options(cfg, cfg_options)
    with quiet_logs(quiet):
        model = MODELS.build(cfg.model)
        if checkpoint is not None:
            load_model_weights(model, checkpoint)  # exact: a CheckpointError says what does not fit, in one line
            # the build may have logged pretrained initialisations (text layers): they are overwritten now
            MMLogger.get_current_instance().info(f'Weights then loaded from {checkpoint}')
        else:
            model.init_weights()
    model.cfg = cfg
    return model.to(device).eval()


def build_test_pipeline(cfg: Config) -> Compose:
    """The config's test-time image pipeline (load, resize, pack)."""
    return Compose(cfg.test_dataloader.dataset.pipeline)


class _ImageFiles(Dataset):
    def __init__(self, paths: Sequence[str], pipeline: Compose) -> None:
        self.paths, self.pipeline = list(paths), pipeline

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        try:
            return self.pipeline(dict(img_path=self.paths[i], sample_idx=i, image_id=i))
        except Exception as err:
            raise RuntimeError(f'cannot load image {self.paths[i]}: {err}') from err


def iter_image_embeddings(
    model: BaseRetriever,
    paths: Sequence[str],
    batch_size: int = 64,
    num_workers: int = 0,
    precision: str = 'fp32',
    fast: bool | str = 'auto',
    run_images: int | None = None,
) -> Iterator[tuple[list[str], torch.Tensor]]:
    """Embed image files in batches: yields ``(paths, (B, E) embeddings)``, fp32.

    Images go through the model config's test pipeline; an unreadable file
    raises, naming it.

    Args:
        model: The retriever, in eval mode.
        paths: Image files.
        batch_size: Images per batch.
        num_workers: Data-loading worker processes.
        precision: ``'fp32'``, ``'bf16'`` (autocast) or ``'auto'`` (bf16 where
            the hardware has it natively); see
            :func:`~rsretrieval.apis.fast_encoding.resolve_precision`.
        fast: Compile the image encoder (:mod:`~rsretrieval.apis.fast_encoding`):
            True, False or ``'auto'`` (CPUs, long runs only). The environment
            variable ``RSRETRIEVAL_FAST_ENCODING=0`` turns it off whatever this says.
        run_images: How many images the whole run encodes when ``paths`` is one
            part of it (an index shard), for ``fast='auto'``; default ``len(paths)``.
    """
    run_images = len(paths) if run_images is None else run_images
    encoder = build_image_encoder(model, precision, fast, num_images=run_images)
    loader = DataLoader(
        _ImageFiles(paths, build_test_pipeline(model.cfg)),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=pseudo_collate,
        worker_init_fn=worker_ignoring_stop_signals,  # a signal to the whole group is for the caller to handle
    )
    start = 0
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            emb = encoder(data['inputs'])
            emb = emb['emb'] if isinstance(emb, dict) else emb
            yield list(paths[start : start + len(emb)]), emb.float()
            start += len(emb)


def embed_texts(model: BaseRetriever, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Embed captions or queries: ``(len(texts), E)``, L2-normalised."""
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            emb = model.encode_text(list(texts[i : i + batch_size]))
            out.append((emb['emb'] if isinstance(emb, dict) else emb).float())
    return torch.cat(out) if out else torch.empty(0, 0)
