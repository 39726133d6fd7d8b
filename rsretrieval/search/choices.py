"""Decisions the search commands share with their argument parser, free of heavy imports."""

from __future__ import annotations

import ipaddress

#: Images from which ``--ann auto`` builds an HNSW index (below it, exact search is fast enough).
ANN_AUTO_THRESHOLD = 100_000


def ann_kind(requested: str, num_images: int) -> str:
    """The faiss index to build: ``requested``, or for ``'auto'`` HNSW from
    :data:`ANN_AUTO_THRESHOLD` images and none below."""
    if requested != 'auto':
        return requested
    return 'hnsw' if num_images >= ANN_AUTO_THRESHOLD else 'none'


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) reaches this machine only."""
    if host.lower() == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host.strip('[]')).is_loopback
    except ValueError:
        return False
