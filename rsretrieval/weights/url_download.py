"""URL weights: downloaded into ``$RSRETRIEVAL_CACHE/url/`` and checked before they land.

A download is written under a temporary name, synced, checked against the spec's
sha256, then renamed, so that an interrupted or corrupted download never stands
under its final name. The digest is recorded next to the file (``NAME.sha256``)
so that later checks need not read the file again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from rsretrieval.utils.atomic_files import atomic_write, fsync_folder, temporary_path

from .environment import offline_reason
from .errors import first_line, interrupted_error, no_connection_error, offline_miss_error, unavailable_error
from .hashing import CHUNK_BYTES, file_sha256
from .sources import WeightSpec, url_cache_path

if TYPE_CHECKING:
    import http.client


def resolve_url(spec: WeightSpec, local_only: bool) -> Path:
    """The cached file of a URL spec, downloading and checking it if allowed.

    Args:
        spec: A spec of kind ``'url'``.
        local_only: Use only the cache.

    Raises:
        WeightsUnavailableError: Not cached while offline, the download failed,
            or the file does not match the spec's sha256.
    """
    dest = url_cache_path(spec.url)
    if dest.is_file():
        _check_cached_url(spec, dest)
        return dest
    offline = offline_reason(local_only)
    if offline is not None:
        raise offline_miss_error(spec, offline, str(dest.parent.parent))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(dest)
    try:
        digest = _download_url(spec, tmp)
        if spec.sha256 and not digest.startswith(spec.sha256):
            raise unavailable_error(
                spec,
                f'sha256 mismatch in the download from {spec.url}: expected {spec.sha256}, got {digest}; '
                'the file was not kept',
                'Check the URL and its #sha256= (or the zoo entry), then fetch again',
            )
        atomic_write(_sidecar(dest), digest + '\n')
        os.replace(tmp, dest)
        fsync_folder(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def url_recorded_sha256(path: Path) -> str | None:
    """The sha256 recorded when a URL-cache file was downloaded, or None."""
    try:
        return _sidecar(path).read_text().strip() or None
    except OSError:
        return None


def _download_url(spec: WeightSpec, tmp: Path) -> str:
    """Stream the URL into ``tmp`` (fsynced); its sha256. Errors become one line."""
    # Imported here: urllib.request costs start-up time that Hub and local weights never need.
    import http.client
    import urllib.error
    import urllib.request

    host = spec.url.split('/')[2]
    request = urllib.request.Request(spec.url, headers={'User-Agent': 'rsretrieval-weights'})
    try:
        with urllib.request.urlopen(request, timeout=60) as response, open(tmp, 'wb') as f:
            return _stream(response, f, spec)
    except urllib.error.HTTPError as err:
        raise unavailable_error(spec, f'{spec.url} answered HTTP {err.code} {err.reason}', 'Check the URL') from None
    except urllib.error.URLError as err:
        raise no_connection_error(spec, host, f'{type(err.reason).__name__}: {err.reason}') from None
    except (http.client.HTTPException, ConnectionError, TimeoutError) as err:
        raise interrupted_error(spec, f'{type(err).__name__}: {first_line(err)}') from None


def _stream(response: http.client.HTTPResponse, f: BinaryIO, spec: WeightSpec) -> str:
    """Copy the response into ``f`` and sync it; its sha256, if every promised byte came."""
    digest, size = hashlib.sha256(), 0
    while chunk := response.read(CHUNK_BYTES):
        digest.update(chunk)
        f.write(chunk)
        size += len(chunk)
    expected = response.headers.get('Content-Length')
    if expected is not None and size != int(expected):
        raise interrupted_error(spec, f'got {size:,} of {int(expected):,} bytes')
    f.flush()
    os.fsync(f.fileno())
    return digest.hexdigest()


def _check_cached_url(spec: WeightSpec, dest: Path) -> None:
    """A cached URL file must match the spec's sha256 (recorded at download)."""
    if not spec.sha256:
        return
    recorded = url_recorded_sha256(dest) or file_sha256(dest)
    if not recorded.startswith(spec.sha256):
        raise unavailable_error(
            spec,
            f'the cached {dest} has sha256 {recorded}, the spec expects {spec.sha256}',
            'Delete the cached file to fetch it again, or fix the sha256',
        )


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + '.sha256')
