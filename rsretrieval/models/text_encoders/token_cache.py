"""Caption token ids for the text encoders: a bounded cache, and padded batches of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch


class TokenCache(dict):
    """``caption -> token ids`` for captions seen before (training sees each once per epoch).

    Args:
        size: Captions kept; the cache is emptied when a batch would overflow
            it (RSICD has 54,605 training captions). 0 turns caching off.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def token_ids(
        self, captions: Sequence[str], encode: Callable[[list[str]], Sequence[Sequence[int]]]
    ) -> list[tuple[int, ...]]:
        """Token ids of each caption: cached ones from the cache, the others from one
        ``encode`` call on the new captions (each once), then cached."""
        new = [c for c in dict.fromkeys(captions) if c not in self]
        encoded = dict(zip(new, map(tuple, encode(new)))) if new else {}
        rows = [encoded[c] if c in encoded else self[c] for c in captions]
        if encoded and self.size:
            if len(self) + len(encoded) > self.size:
                self.clear()
            self.update(encoded)
        return rows


def pad_token_rows(
    rows: Sequence[Sequence[int]], length: int, pad_id: int, device: torch.device | str = 'cpu'
) -> dict[str, torch.Tensor]:
    """Token id rows padded with ``pad_id`` to ``length``, and their attention mask.

    The copy to a GPU ``device`` does not wait for the device.

    Returns:
        ``input_ids`` and ``attention_mask``, ``(B, length)`` int64 on ``device``.
    """
    ids = np.full((len(rows), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    non_blocking = torch.device(device).type == 'cuda'
    return dict(
        input_ids=torch.from_numpy(ids).to(device, non_blocking=non_blocking),
        attention_mask=torch.from_numpy(mask).to(device, non_blocking=non_blocking),
    )
