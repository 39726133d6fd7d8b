"""One resolver for every pretrained weight a config names.

``resolve_weights(spec)`` turns a weight spec (:mod:`rsretrieval.weights.sources`)
into a local file or folder, handing each kind to the module that knows it:

- local paths and packaged weights: :mod:`.local_weights`;
- Hub specs: :mod:`.hub_download`, through huggingface_hub's cache (``HF_HOME``,
  ``HF_HUB_CACHE``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, read when the call is
  made), with every downloaded LFS blob checked against its sha256 name;
- URLs: :mod:`.url_download`, into ``$RSRETRIEVAL_CACHE/url/`` (default
  ``~/.cache/rsretrieval``), never landing under the final name unless complete
  and checked.

``local_only=True``, ``HF_HUB_OFFLINE=1`` or ``RSRETRIEVAL_OFFLINE=1``: no
network; what is cached is used, anything else is an error naming the fetch
command. Every failure is a :class:`WeightsUnavailableError` whose message is one
line: the spec, what went wrong, what to do (:mod:`.errors`).

The names of the modules it dispatches to are re-exported here, so that callers
import them from one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from .config_specs import SPEC_KEYS, find_weight_specs
from .environment import hub_cache_dir, hub_endpoint, offline_reason
from .errors import FETCH, WeightsUnavailableError
from .hashing import file_sha256, hf_blob_sha256
from .hub_download import SNAPSHOT_IGNORE, resolve_hub
from .local_weights import resolve_packaged, resolve_path
from .resolved_weights import HF_WEIGHT_FILES, ResolvedWeights, main_weight_file
from .sources import PACKAGED_WEIGHTS, inner_kind
from .url_download import resolve_url, url_recorded_sha256
from .verify import Verification, compare_with_references
from .zoo import parse_spec

__all__ = [
    'FETCH',
    'HF_WEIGHT_FILES',
    'SNAPSHOT_IGNORE',
    'SPEC_KEYS',
    'ResolvedWeights',
    'Verification',
    'WeightsUnavailableError',
    'check_weights',
    'fetch_weights',
    'file_sha256',
    'find_weight_specs',
    'hf_blob_sha256',
    'hub_cache_dir',
    'hub_endpoint',
    'main_weight_file',
    'offline_reason',
    'resolve_weights',
    'url_recorded_sha256',
    'verify_weights',
]

#: The function that finds each inner kind of spec (:func:`~.sources.inner_kind`) on disk.
_RESOLVERS = {
    'path': resolve_path,
    'packaged': resolve_packaged,
    'hf-hub': resolve_hub,
    'url': resolve_url,
}


def resolve_weights(spec: str | os.PathLike, *, local_only: bool = False) -> ResolvedWeights:
    """Find (downloading if allowed and needed) the weights a spec names.

    Args:
        spec: A local path, packaged name, zoo name, ``hf-hub:`` spec or URL.
        local_only: Never touch the network.

    Returns:
        The local file or folder and where it came from.

    Raises:
        ValueError: A malformed spec.
        WeightsUnavailableError: The weights cannot be had (one-line message).
    """
    text = os.fspath(spec) if isinstance(spec, os.PathLike) else str(spec)
    parsed = parse_spec(text)
    kind = inner_kind(parsed)
    path = _RESOLVERS[kind](parsed, local_only)
    source = parsed.source
    if kind == 'packaged':
        source = f'package {PACKAGED_WEIGHTS[parsed.source][0].replace("_", "-")}'
    elif kind == 'path':
        source = str(path)
    return ResolvedWeights(spec=text, name=parsed.name if parsed.kind == 'zoo' else None, path=path, source=source)


def fetch_weights(specs: Iterable[str]) -> list[ResolvedWeights]:
    """Resolve each spec, downloading what is missing (the ``fetch`` command)."""
    return [resolve_weights(spec) for spec in specs]


def check_weights(specs: Iterable[str | None]) -> list[str]:
    """One line per spec that is not available locally (checked without network).

    Tools call this before building a model so that a missing weight is named
    at once rather than after seconds of imports. None entries are skipped.
    """
    problems = []
    for spec in dict.fromkeys(s for s in specs if s is not None):
        try:
            resolve_weights(spec, local_only=True)
        except (ValueError, WeightsUnavailableError) as err:
            problems.append(str(err))
    return problems


def verify_weights(spec: str) -> Verification:
    """Recompute the sha256 of cached weights and compare with their reference.

    The reference is the Hub blob name (LFS files), else the zoo entry's or
    URL's sha256 (or the digest recorded when the URL was downloaded). Never
    touches the network.

    Args:
        spec: Any spec :func:`resolve_weights` takes.

    Returns:
        ``'NOT CACHED'`` when the weights cannot be resolved locally, else the
        outcome of :func:`~.verify.compare_with_references`.
    """
    try:
        resolved = resolve_weights(spec, local_only=True)
    except (ValueError, WeightsUnavailableError) as err:
        return Verification(spec, 'NOT CACHED', str(err))
    return compare_with_references(spec, resolved)
