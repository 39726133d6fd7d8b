"""What a text query may hold, and queries read from a file or a prompt, free of heavy imports.

A query is plain text: control characters (NUL, the other C0 characters but the tab,
DEL and the C1 characters) are refused, as is text that is not valid UTF-8 (bytes that
reached Python as lone surrogates). The command line, its query file, its prompt loop
and the search server share these rules, so that a query refused by one is refused by
all.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

#: Characters of category Cc that a query may hold: the tokeniser reads a tab as a space.
ALLOWED_CONTROLS = frozenset('\t')
_CONTROL_NAMES = {'\x00': 'NUL', '\n': 'a line break', '\r': 'a line break', '\x1b': 'ESC', '\x7f': 'DEL'}
PROMPT = 'query> '
STDIN = '<stdin>'


class QueryError(ValueError):
    """A query, or a file of queries, that cannot be searched; the message says why in one line."""


def _bad_character(query: str) -> str | None:
    """Why the first character that a query may not hold is refused, or None."""
    for position, char in enumerate(query, 1):
        category = unicodedata.category(char)
        if category == 'Cs':  # how Python carries bytes that are not UTF-8 (surrogateescape)
            return f'is not valid UTF-8 text (a byte that is not UTF-8 at character {position})'
        if category == 'Cc' and char not in ALLOWED_CONTROLS:
            name = f'U+{ord(char):04X}' + (f', {_CONTROL_NAMES[char]}' if char in _CONTROL_NAMES else '')
            return f'contains a control character ({name}) at character {position}; queries are plain text'
    return None


def text_problem(query: str) -> str | None:
    """Why ``query`` cannot be searched, as the end of a sentence about it, or None.

    Examples: ``'is empty: ...'``, ``'contains a control character (U+0000, NUL) at character 3; ...'``.
    A control character is named before emptiness: some (U+001C to U+001F) count as white space.
    """
    if problem := _bad_character(query):
        return problem
    if not query.strip():
        return 'is empty: give a text to search for, e.g. "a bridge over a river"'
    return None


def is_blank(line: str) -> bool:
    """White space only, without a refused control character: a line a query file or the prompt skips."""
    return not line.strip() and _bad_character(line) is None


def query_lines(lines: Iterable[bytes], source: str) -> list[str]:
    """The queries of a file's lines: one a line, surrounding white space dropped, blank lines skipped.

    Args:
        lines: The file's lines, without their ``\\n`` (a ``\\r`` before it is dropped).
        source: The file's name, for the messages.

    Raises:
        QueryError: A line that is not UTF-8 or holds a control character
            (``source:line: ...``), or no query at all.
    """
    queries = []
    for number, raw in enumerate(lines, 1):
        try:
            text = raw.removesuffix(b'\r').decode('utf-8')
        except UnicodeDecodeError as err:
            raise QueryError(f'{source}:{number}: not UTF-8 text (byte {err.start + 1} of the line)') from None
        if is_blank(text):
            continue
        if problem := text_problem(text):
            raise QueryError(f'{source}:{number}: the query {problem}')
        queries.append(text.strip())
    if not queries:
        raise QueryError(f'{source} holds no query (one query a line; blank lines are skipped)')
    return queries


def read_queries(path: str, stdin: TextIO | None = None) -> list[str]:
    """The queries of the file ``path`` (``-``: standard input, read to its end); see :func:`query_lines`.

    Raises:
        QueryError: The file cannot be read, or :func:`query_lines` refuses it.
    """
    if path == '-':
        stream = stdin if stdin is not None else sys.stdin
        data, source = stream.buffer.read(), STDIN
    else:
        try:
            data, source = Path(path).read_bytes(), path
        except OSError as err:
            raise QueryError(f'cannot read the query file {path}: {err.strerror or err}') from None
    lines = data.split(b'\n')  # not splitlines(): it would also split at U+001C..U+001E and hide them
    if lines and not lines[-1]:
        lines.pop()  # the file's last line break ends a line, it does not start one
    return query_lines(lines, source)


def prompt_lines(stream: TextIO, prompt: str = PROMPT) -> Iterator[str]:
    """Lines of ``stream`` as they come, until its end, without their line break.

    When ``stream`` is the terminal, each line is asked for with ``prompt``
    (on stderr when stdout is redirected, so that the results stay clean).
    """
    on_terminal = stream is sys.stdin and stream.isatty()
    if on_terminal and sys.stdout.isatty():
        _enable_line_editing()
        while True:
            try:
                yield input(prompt)
            except EOFError:
                print(flush=True)  # end the prompt's line at Ctrl-D
                return
    while True:
        if on_terminal:
            print(prompt, end='', file=sys.stderr, flush=True)
        line = stream.readline()
        if not line:
            return
        yield line.removesuffix('\n').removesuffix('\r')


def _enable_line_editing() -> None:
    """Import :mod:`readline`, which gives :func:`input` line editing and history (absent on some builds)."""
    try:
        import readline  # noqa: F401
    except ImportError:
        pass


def query_loop(
    lines: Iterable[str], answer: Callable[[str], None], errors: TextIO | None = None, source: str = STDIN
) -> tuple[int, int]:
    """Answer each line of ``lines`` with ``answer`` as it comes.

    Blank lines are skipped; a line :func:`text_problem` refuses is reported on
    ``errors`` (stderr by default) as ``source:line: the query ...``, and the loop goes on.

    Returns:
        ``(answered, refused)``: how many lines were answered and how many refused.
    """
    errors = errors if errors is not None else sys.stderr
    answered = refused = 0
    for number, line in enumerate(lines, 1):
        if is_blank(line):
            continue
        if problem := text_problem(line):
            print(f'{source}:{number}: the query {problem}', file=errors, flush=True)
            refused += 1
            continue
        answer(line.strip())
        answered += 1
    return answered, refused
