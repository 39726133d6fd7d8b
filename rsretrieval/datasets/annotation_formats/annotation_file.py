"""An annotation file (or folder) as the formats see it, read at most once."""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

#: How many leading bytes a detector may look at.
HEAD_BYTES = 4096


class AnnotationError(ValueError):
    """Malformed annotation; the message names the file (and line or entry)."""


class AnnotationFile:
    """The annotation file or folder given to a dataset.

    Detectors and readers share one instance, so a JSON file is parsed once
    however many formats look at it.

    Args:
        path: The annotation file, or a folder (precomp).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @cached_property
    def head(self) -> bytes:
        """The first :data:`HEAD_BYTES` bytes; empty for a folder."""
        if self.path.is_dir():
            return b''
        with self.path.open('rb') as file:
            return file.read(HEAD_BYTES)

    def looks_like_json(self) -> bool:
        """A ``.json`` name, or text that opens with ``{`` or ``[``."""
        return self.path.suffix == '.json' or self.head.lstrip()[:1] in (b'{', b'[')

    def json(self) -> object:
        """The parsed JSON content (parsed on first use).

        Raises:
            AnnotationError: Not UTF-8 text, or malformed JSON (with line and column).
        """
        return self._json

    @cached_property
    def _json(self) -> object:
        return read_json(self.path)


def read_json(path: Path) -> object:
    """Parse the JSON file ``path``.

    Raises:
        AnnotationError: Not UTF-8 text, malformed JSON (with the line and
            column), a number too long for Python, or nesting too deep for its
            parser; each names the file.
    """
    try:
        text = path.read_text(encoding='utf-8')
    except UnicodeDecodeError as err:
        raise AnnotationError(f'{path}: not UTF-8 text (byte {err.start})') from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise AnnotationError(f'{path}:{err.lineno}:{err.colno}: malformed JSON: {err.msg}') from err
    except ValueError as err:  # a number beyond Python's digit limit for int()
        raise AnnotationError(f'{path}: unreadable JSON: {err}') from err
    except RecursionError as err:  # the parser recurses once per nested list or object
        raise AnnotationError(f'{path}: JSON nested too deeply to read') from err


def read_text_lines(path: Path, allow_empty: bool, strip: bool = True) -> list[str]:
    """The lines of ``path``; trailing blank lines are dropped, inner ones kept if allowed.

    Lines end at ``\\n``, ``\\r\\n`` or ``\\r``, as in a file read in text mode (the
    AMFMN/GaLR readers); a form feed or a Unicode line separator inside a
    caption does not end its line.

    Args:
        path: A UTF-8 text file.
        allow_empty: Keep inner blank lines (else they raise).
        strip: Strip white space off each line; column formats keep it, since
            a leading tab marks an empty first column.

    Raises:
        AnnotationError: Text that is not UTF-8, or an inner empty line when
            ``allow_empty`` is false (``file:line``).
    """
    try:
        text = path.read_text(encoding='utf-8')
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b'\n') + 1
        raise AnnotationError(f'{path}:{line}: not UTF-8 text') from err
    # read_text has turned \r\n and \r into \n; str.splitlines would break at more
    lines = text.split('\n')
    while lines and not lines[-1].strip():
        lines.pop()
    for i, line in enumerate(lines):
        if not allow_empty and not line.strip():
            raise AnnotationError(f'{path}:{i + 1}: empty line')
    return [line.strip() for line in lines] if strip else lines
