"""A bounded cache of caption token ids, shared by the text encoders."""

from __future__ import annotations

from collections.abc import Callable, Sequence


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
