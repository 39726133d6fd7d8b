"""Typed access to the entries of a parsed annotation file.

Annotation files are written by hand, by scripts and by spreadsheets, so any
field may hold any JSON value. A format reads every value it uses through these
accessors: a missing key or a value of the wrong type raises
:class:`AnnotationError` naming the place (``where``: the file and the entry,
e.g. ``dataset.json[images][3] (3.png)``), the field, what was expected and
what was found, instead of a bare ``TypeError`` further on::

    dataset.json[images][3] (3.png): key "sentences" must be a list, got null
"""

from __future__ import annotations

from collections.abc import Mapping

from .annotation_file import AnnotationError

#: How a message names each expected type.
EXPECTED = {dict: 'an object', list: 'a list', str: 'a string'}
#: How much of a found value a message shows.
SHOWN_CHARS = 40


def describe(value: object) -> str:
    """A found value as a message shows it: ``null``, or its type and a short repr (``int 7``)."""
    if value is None:
        return 'null'
    shown = repr(value)
    if len(shown) > SHOWN_CHARS:
        shown = shown[: SHOWN_CHARS - 3] + '...'
    return f'{type(value).__name__} {shown}'


def expect_dict(value: object, where: str) -> dict:
    """``value`` if it is an object (a dict), for an entry found at ``where``.

    Raises:
        AnnotationError: ``{where}: expected an object, got ...``.
    """
    if not isinstance(value, dict):
        raise AnnotationError(f'{where}: expected {EXPECTED[dict]}, got {describe(value)}')
    return value


def require_str(entry: Mapping, key: str, where: str, *, non_empty: bool = False, label: str | None = None) -> str:
    """``entry[key]``, which must be a string.

    Args:
        entry: The entry (an object of the file).
        key: The field.
        where: The file and the entry, the start of a message.
        non_empty: Refuse a string that is empty or only white space, as for
            a file name.
        label: How a message calls the field; ``key "<key>"`` by default.

    Raises:
        AnnotationError: The key is missing, or its value is not a (non-empty)
            string: ``{where}: key "filename" must be a string, got int 7``.
    """
    subject = label or f'key "{key}"'
    value = _field(entry, key, where, subject)
    if isinstance(value, str) and (value.strip() or not non_empty):
        return value
    expected = 'a non-empty string' if isinstance(value, str) else EXPECTED[str]
    raise AnnotationError(f'{where}: {subject} must be {expected}, got {describe(value)}')


def require_list(entry: Mapping, key: str, where: str, *, label: str | None = None) -> list:
    """``entry[key]``, which must be a list (its items are the caller's to check).

    Raises:
        AnnotationError: The key is missing or its value is not a list.
    """
    subject = label or f'key "{key}"'
    value = _field(entry, key, where, subject)
    if not isinstance(value, list):
        raise AnnotationError(f'{where}: {subject} must be {EXPECTED[list]}, got {describe(value)}')
    return value


def require_str_list(
    entry: Mapping, key: str, where: str, *, allow_str: bool = False, label: str | None = None
) -> list[str]:
    """``entry[key]``, which must be a list of strings.

    Args:
        entry: The entry (an object of the file).
        key: The field.
        where: The file and the entry, the start of a message.
        allow_str: Accept one string too, returned as a list of one (ALBEF's
            ``"caption": "..."`` beside ``"caption": ["...", ...]``).
        label: How a message calls the field; ``key "<key>"`` by default.

    Raises:
        AnnotationError: The key is missing, its value is not a list (or a
            string, with ``allow_str``), or an item is not a string (the
            message gives its index).
    """
    subject = label or f'key "{key}"'
    value = _field(entry, key, where, subject)
    if allow_str and isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        expected = 'a string or a list of strings' if allow_str else 'a list of strings'
        raise AnnotationError(f'{where}: {subject} must be {expected}, got {describe(value)}')
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise AnnotationError(f'{where}: item {index} of {subject} must be a string, got {describe(item)}')
    return value


def _field(entry: Mapping, key: str, where: str, subject: str) -> object:
    if key not in entry:
        raise AnnotationError(f'{where}: missing {subject}')
    return entry[key]
