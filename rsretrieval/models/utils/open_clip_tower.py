"""What the image and the text tower of an open_clip model share: loading their part of a checkpoint."""

from __future__ import annotations

import os
from collections.abc import Mapping

from mmengine.logging import MMLogger
from torch import nn

from .open_clip_weights import load_tower, read_open_clip_state_dict, split_open_clip_state


class OpenCLIPTowerMixin:
    """``init_weights`` and ``load_open_clip`` for a module holding one tower of an
    open_clip model. Put it before ``BaseModule`` in the bases; the class sets
    ``tower`` (``'image'`` or ``'text'``), ``arch`` and ``pretrained``, and
    overrides :meth:`tower_module` when the tower is a child module.
    """

    tower: str
    arch: str
    pretrained: str | os.PathLike | None

    def tower_module(self) -> nn.Module:
        """The module whose state dict is the tower's (``self`` by default)."""
        return self  # type: ignore[return-value]

    def init_weights(self) -> None:
        super().init_weights()  # type: ignore[misc]
        if self.pretrained is not None:
            self.load_open_clip(self.pretrained)

    def load_open_clip(self, path: str | os.PathLike, state: Mapping | None = None) -> None:
        """Load this tower of a local open_clip checkpoint (exactly; one-line errors).

        Args:
            path: The checkpoint file.
            state: Its state dict when already read (:func:`read_open_clip_state_dict`).
        """
        image, text, _ = split_open_clip_state(read_open_clip_state_dict(path) if state is None else state)
        load_tower(self.tower_module(), image if self.tower == 'image' else text, path, self.tower, self.arch)
        name = type(self).__name__
        MMLogger.get_current_instance().info(f'{name}({self.arch}): {self.tower} tower loaded from {path}')
