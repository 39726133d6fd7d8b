"""Using a trained model outside the Runner: build it, load its weights, encode files."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import MMLogger
from torch.utils.data import DataLoader, Dataset

from rsretrieval.models.retrievers import BaseRetriever
from rsretrieval.registry import MODELS
from rsretrieval.utils import load_model_weights, merge_cfg_options, quiet_logs, read_config, register_all_modules


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
        config: Config file or object.
        checkpoint: Checkpoint of this config's model (mmengine ``.pth`` or a
            plain state dict); ``None`` keeps the initial weights.
        device: Where the model runs.
        cfg_options: Overrides, as ``--cfg-options`` (``data_root`` and
            ``text_weights`` propagate).
        quiet: Log only warnings while the model is built and loaded (the
            tools' default: their result first; ``--verbose`` turns it off).
    """
    register_all_modules()
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
    model: BaseRetriever, paths: Sequence[str], batch_size: int = 64, num_workers: int = 0
) -> Iterator[tuple[list[str], torch.Tensor]]:
    """Embed image files in batches: yields ``(paths, (B, E) embeddings)``.

    Images go through the model config's test pipeline; an unreadable file
    raises, naming it.
    """
    loader = DataLoader(
        _ImageFiles(paths, build_test_pipeline(model.cfg)),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=pseudo_collate,
    )
    start = 0
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            emb = model.encode_image(data['inputs'])
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
