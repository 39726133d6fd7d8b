"""The model zoo: short names for pretrained weights, read from ``model_zoo.yml``.

The packaged file lists every weight the configs name. A lab adds its own (or
overrides one) by pointing ``$RSRETRIEVAL_ZOO`` at YAML files of the same shape
(``weights:`` then a list of entries; several files separated by ``os.pathsep``);
their entries are merged over the packaged ones, name by name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .sources import HF_PREFIX, WeightSpec, normalise_sha256, parse_source

#: The packaged zoo file.
ZOO_FILE = Path(__file__).with_name('model_zoo.yml')
#: Environment variable naming extra zoo files, merged over the packaged one.
ZOO_ENV = 'RSRETRIEVAL_ZOO'

REQUIRED = ('name', 'source', 'initialises', 'licence', 'homepage', 'params')
OPTIONAL = ('files', 'sha256', 'arch', 'notes')
# Names are config values and command-line words: no separators, no spec prefixes.
_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.+-]*')


class ZooError(ValueError):
    """A zoo file that does not follow the schema (the message names file and entry)."""


@dataclass(frozen=True)
class ZooEntry:
    """One weight of the model zoo.

    Attributes:
        name: Short name used in configs and on the command line.
        source: The weight spec it resolves through.
        initialises: Which components start from these weights.
        licence: The weights' licence.
        homepage: Model card or paper.
        params: Parameter count of the checkpoint's architecture.
        files: Allow-patterns restricting a folder snapshot.
        sha256: Expected sha256 (or prefix) of a URL source.
        arch: open_clip architecture, for CLIP checkpoints.
        notes: Free text.
        origin: The zoo file the entry came from.
    """

    name: str
    source: str
    initialises: str
    licence: str
    homepage: str
    params: int
    files: tuple[str, ...] = ()
    sha256: str | None = None
    arch: str | None = None
    notes: str | None = None
    origin: str = field(default='', compare=False)

    @property
    def approx_fp32_bytes(self) -> int:
        """``params * 4``: the approximate size of the weights stored in fp32."""
        return self.params * 4


def load_zoo(extra: str | os.PathLike | None = None) -> dict[str, ZooEntry]:
    """The zoo: packaged entries, then ``$RSRETRIEVAL_ZOO`` files, then ``extra``.

    Args:
        extra: One more zoo file, merged last.

    Returns:
        ``name -> ZooEntry``, in file order.

    Raises:
        ZooError: A file is missing, not YAML, or an entry breaks the schema.
    """
    files = [ZOO_FILE]
    files += [Path(p) for p in os.environ.get(ZOO_ENV, '').split(os.pathsep) if p.strip()]
    if extra is not None:
        files.append(Path(extra))
    zoo: dict[str, ZooEntry] = {}
    for path in files:
        zoo.update(_read_cached(str(path)))
    return zoo


_CACHE: dict[tuple[str, int, int], dict[str, ZooEntry]] = {}


def _read_cached(path: str) -> dict[str, ZooEntry]:
    # Read once per file version: parse_spec looks names up on every call.
    try:
        stat = os.stat(path)
    except OSError as err:
        where = f' (from ${ZOO_ENV})' if path != str(ZOO_FILE) else ''
        raise ZooError(f'zoo file not found: {path}{where}') from err
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _CACHE:
        _CACHE[key] = read_zoo_file(path)
    return _CACHE[key]


def read_zoo_file(path: str | os.PathLike) -> dict[str, ZooEntry]:
    """Read and validate one zoo file.

    Raises:
        ZooError: The file is not YAML, lacks the ``weights:`` list, or an entry
            breaks the schema (the message names the file and the entry).
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding='utf-8'))
    except (OSError, yaml.YAMLError) as err:
        raise ZooError(f'zoo file {path}: cannot read it as YAML: {" ".join(str(err).split())}') from err
    if not isinstance(data, dict) or not isinstance(data.get('weights'), list) or set(data) != {'weights'}:
        raise ZooError(f'zoo file {path}: expected one top-level key `weights:` holding a list of entries')
    zoo: dict[str, ZooEntry] = {}
    for index, raw in enumerate(data['weights']):
        entry = _entry(raw, f'zoo file {path}: entry #{index + 1}', str(path))
        if entry.name in zoo:
            raise ZooError(f'zoo file {path}: entry {entry.name!r} is listed twice')
        zoo[entry.name] = entry
    return zoo


def _entry(raw: object, where: str, origin: str) -> ZooEntry:
    """Validate one raw entry; ``where`` names it in errors."""
    if not isinstance(raw, dict):
        raise ZooError(f'{where}: expected a mapping of fields, got {type(raw).__name__}')
    if isinstance(raw.get('name'), str):
        where = f'{where.rsplit(": entry", 1)[0]}: entry {raw["name"]!r}'
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ZooError(f'{where}: unknown field(s) {", ".join(unknown)}; allowed: {", ".join(REQUIRED + OPTIONAL)}')
    missing = [k for k in REQUIRED if raw.get(k) in (None, '')]
    if missing:
        raise ZooError(f'{where}: missing field(s) {", ".join(missing)}')
    for key in ('name', 'source', 'initialises', 'licence', 'homepage', 'arch', 'notes'):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ZooError(f'{where}: {key} must be a string, got {raw[key]!r}')
    _check_name_and_source(raw, where)
    params = raw['params']
    if isinstance(params, bool) or not isinstance(params, int) or params <= 0:
        raise ZooError(f'{where}: params must be a positive integer (a parameter count), got {params!r}')
    files = raw.get('files') or []
    if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
        raise ZooError(f'{where}: files must be a list of file names or glob patterns')
    if files and not (raw['source'].startswith(HF_PREFIX) and parse_source(raw['source']).filename is None):
        raise ZooError(f'{where}: files only applies to a folder snapshot source (hf-hub:ORG/NAME without :PATH)')
    try:
        sha256 = normalise_sha256(raw.get('sha256'), where)
    except ValueError as err:
        raise ZooError(str(err)) from None
    fields = {k: raw.get(k) for k in ('name', 'source', 'initialises', 'licence', 'homepage', 'arch', 'notes')}
    return ZooEntry(**fields, params=params, files=tuple(files), sha256=sha256, origin=origin)


def _check_name_and_source(raw: dict, where: str) -> None:
    if not _NAME.fullmatch(raw['name']):
        raise ZooError(f'{where}: name must be letters, digits and . _ + - (no separators), got {raw["name"]!r}')
    try:
        parse_source(raw['source'])
    except ValueError as err:
        raise ZooError(f'{where}: source: {err}') from None


def format_size(num_bytes: float) -> str:
    """``1234567`` -> ``'1.2 MB'`` (decimal units, as download sizes are quoted)."""
    for unit in ('B', 'kB', 'MB', 'GB'):
        if num_bytes < 1000:
            return f'{num_bytes:.0f} {unit}' if unit == 'B' else f'{num_bytes:.1f} {unit}'
        num_bytes /= 1000
    return f'{num_bytes:.1f} TB'


def parse_spec(spec: str | os.PathLike, zoo: Mapping | None = None) -> WeightSpec:
    """Parse a weight spec, looking bare names up in the model zoo.

    Args:
        spec: The spec (see the module docstring).
        zoo: ``name -> ZooEntry``; the packaged zoo (plus ``$RSRETRIEVAL_ZOO``)
            when None.

    Returns:
        The parsed spec. A zoo name carries its entry's source fields, its
        ``files`` and ``sha256``, with ``kind='zoo'`` and ``name`` set.

    Raises:
        ValueError: A malformed spec (the message names it).
    """
    text = os.fspath(spec) if isinstance(spec, os.PathLike) else str(spec)
    if text.startswith((HF_PREFIX, 'http://', 'https://')):
        return parse_source(text)
    if zoo is None and _could_be_name(text):
        zoo = load_zoo()
    entry = (zoo or {}).get(text)
    if entry is None:
        return parse_source(text)
    inner = parse_source(entry.source)
    # An entry's own checksum wins over none; a URL's #sha256= fragment wins over the entry's.
    return WeightSpec(
        spec=text,
        kind='zoo',
        name=entry.name,
        path=inner.path,
        repo=inner.repo,
        revision=inner.revision,
        filename=inner.filename,
        url=inner.url,
        sha256=inner.sha256 or entry.sha256,
        files=tuple(entry.files),
        source=entry.source,
    )


def _could_be_name(text: str) -> bool:
    # A path with a separator is never a zoo name: no need to read the zoo file.
    return os.sep not in text and '/' not in text
