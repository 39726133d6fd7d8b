"""The data loaders' ``pin_memory``, kept where it helps."""

from __future__ import annotations

from mmengine.config import Config


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
