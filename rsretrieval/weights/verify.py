"""Cached weights checked byte for byte against their reference checksums.

The reference is the Hub blob name (LFS files), else the zoo entry's or URL's
sha256 (or the digest recorded when the URL was downloaded). Local paths and
packaged weights have none and are reported unchecked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .hashing import file_sha256, hf_blob_sha256
from .resolved_weights import ResolvedWeights
from .sources import WeightSpec, inner_kind
from .url_download import url_recorded_sha256
from .zoo import parse_spec


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`~rsretrieval.weights.resolver.verify_weights`.

    Attributes:
        spec: The spec checked.
        status: ``'OK'``, ``'MISMATCH'``, ``'NOT CACHED'`` or ``'UNCHECKED'`` (no
            reference checksum: a local path or packaged weights).
        detail: One line: the path and digest, or what is wrong.
    """

    spec: str
    status: str
    detail: str


def compare_with_references(spec: str, resolved: ResolvedWeights) -> Verification:
    """Recompute the sha256 of each resolved file that has a reference and compare.

    Args:
        spec: The spec as given.
        resolved: Where it was found in the cache.

    Returns:
        ``'OK'``, ``'MISMATCH'`` (naming the first file that differs) or
        ``'UNCHECKED'`` when no file has a reference.
    """
    checks = list(_references(resolved, parse_spec(spec)))
    if not checks:
        digest = resolved.sha256
        return Verification(spec, 'UNCHECKED', f'{resolved.path} (no reference checksum) sha256={digest}')
    for file, expected in checks:
        got = file_sha256(file, trust_blob_name=False)
        if not got.startswith(expected):
            return Verification(spec, 'MISMATCH', f'{file}: expected sha256 {expected}, got {got}')
    return Verification(spec, 'OK', f'{resolved.path} ({len(checks)} file(s)) sha256={resolved.sha256}')


def _references(resolved: ResolvedWeights, parsed: WeightSpec) -> Iterator[tuple[Path, str]]:
    """``(file, expected sha256 or prefix)`` for each file with a reference."""
    kind = inner_kind(parsed)
    files = [resolved.path] if resolved.path.is_file() else sorted(p for p in resolved.path.rglob('*') if p.is_file())
    for file in files:
        if kind == 'hf-hub':
            blob = hf_blob_sha256(file)
            if blob is not None:
                yield file, blob
        elif kind == 'url':
            expected = parsed.sha256 or url_recorded_sha256(file)
            if expected:
                yield file, expected
