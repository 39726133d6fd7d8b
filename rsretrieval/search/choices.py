"""Decisions the search commands share with their argument parser, free of heavy imports."""

from __future__ import annotations

import ipaddress

#: Images from which ``--ann auto`` builds an HNSW index (below it, exact search is fast enough).
ANN_AUTO_THRESHOLD = 100_000
#: Images from which ``--ann auto`` builds a compressed IVF-PQ index rather than HNSW. HNSW keeps
#: every float32 embedding in memory with its graph (about 1.3 KB per 256-d image, 2.3 KB per
#: 512-d one) and is built from all embeddings loaded at once: 1.3 to 2.3 GB at a million images.
#: The compressed index takes 72 bytes per image and is built from memory-mapped shards.
IVFPQ_AUTO_THRESHOLD = 1_000_000


def ann_kind(requested: str, num_images: int) -> str:
    """The faiss index to build: ``requested``, or for ``'auto'`` none below
    :data:`ANN_AUTO_THRESHOLD` images, HNSW below :data:`IVFPQ_AUTO_THRESHOLD`, IVF-PQ from it."""
    if requested != 'auto':
        return requested
    if num_images < ANN_AUTO_THRESHOLD:
        return 'none'
    return 'hnsw' if num_images < IVFPQ_AUTO_THRESHOLD else 'ivfpq'


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) reaches this machine only."""
    if host.lower() == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host.strip('[]')).is_loopback
    except ValueError:
        return False
