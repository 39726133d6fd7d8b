"""Which images ``index`` embeds: every image under a folder, those a list file names, or a dataset split.

Every way gives paths relative to the image folder, as the index records them,
written the way :func:`~rsretrieval.search.archive_index.find_images` writes them
(POSIX, normalised), so that a list and a folder scan name one image alike and an
index built one way can be resumed or extended the other.

Nothing here imports torch; reading a split imports the annotation formats (and
so the registries) when it is asked for.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .archive_index import find_images

#: Problems named in a list's error beyond the first (the rest are counted).
MORE_SHOWN = 5


class ImageListError(ValueError):
    """A list file or a split that cannot be indexed; the message names the file and line (or entry)."""


@dataclass(frozen=True)
class ImageSelection:
    """The images to index and where they come from.

    Attributes:
        paths: Relative to the image folder, POSIX, in the order they are indexed.
        source: Where they come from, for messages: ``'under /data/archive'``,
            ``'listed in list.txt'``, ``'in the test split of dataset.json'``.
        notes: What was done quietly (repeated entries dropped), one line each.
    """

    paths: list[str]
    source: str
    notes: tuple[str, ...] = field(default=())


def select_images(
    root: str | os.PathLike,
    list_file: str | None = None,
    split_of: str | None = None,
    split: str | None = None,
    ann_format: str = 'auto',
) -> ImageSelection:
    """The images of ``root`` to index: those ``list_file`` names, those of ``split`` of the
    annotation file ``split_of``, or (neither given) every image under ``root``.

    Raises:
        ImageListError: See :func:`listed_images` and :func:`split_images`.
        NotADirectoryError: ``root`` is not a folder.
    """
    if list_file is not None:
        return listed_images(list_file, root)
    if split_of is not None:
        return split_images(split_of, split or '', root, ann_format)
    return ImageSelection(find_images(root), f'under {root}')


# ------------------------------------------------------------------ list files
def listed_images(list_file: str | os.PathLike, root: str | os.PathLike) -> ImageSelection:
    """The images a text file names, one a line, in the file's order.

    A line is a path relative to ``root``, or an absolute path inside it
    (recorded relative to it); surrounding white space is ignored, blank lines
    and lines that start with ``#`` are skipped. A path named twice (after
    normalisation: ``./a.png`` is ``a.png``) is indexed once, with a note.

    Raises:
        ImageListError: The file is not UTF-8 text or names no image; a line
            leads out of ``root`` or names a file that does not exist (the
            first such line is named, the others counted).
    """
    entries = []
    for number, line in enumerate(_text_lines(Path(list_file)), 1):
        text = line.strip()
        if text and not text.startswith('#'):
            entries.append((f'{list_file}:{number}', text))
    if not entries:
        raise ImageListError(f'{list_file} names no image (one path a line; blank lines and # comments are skipped)')
    paths, notes = _checked(entries, Path(root), f'{list_file}')
    return ImageSelection(paths, f'listed in {list_file}', notes)


def _text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file; an undecodable line is named."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ImageListError(f'cannot read the list file {path}: {err.strerror or err}') from None
    lines = []
    for number, raw in enumerate(data.split(b'\n'), 1):
        try:
            lines.append(raw.removesuffix(b'\r').decode('utf-8'))
        except UnicodeDecodeError as err:
            raise ImageListError(f'{path}:{number}: not UTF-8 text (byte {err.start + 1} of the line)') from None
    return lines


# ---------------------------------------------------------------------- splits
def split_images(
    ann_file: str | os.PathLike, split: str, root: str | os.PathLike, ann_format: str = 'auto'
) -> ImageSelection:
    """The images of ``split`` of a dataset's annotation file, in the file's order.

    The file is read by :func:`rsretrieval.datasets.annotation_formats.load_annotations`
    (any registered format, detected unless ``ann_format`` names one); its image names
    are relative to ``root``, the dataset's image folder.

    Raises:
        ImageListError: The annotation file cannot be read (its reader's message), or an
            image of the split is missing under ``root`` or leads out of it (named by its
            place in the annotation file).
    """
    from rsretrieval.datasets.annotation_formats import AnnotationError, load_annotations
    from rsretrieval.plugins import PluginError

    try:
        records = load_annotations(ann_file, split, ann_format)
    except (AnnotationError, FileNotFoundError, PluginError) as err:
        raise ImageListError(str(err)) from None
    entries = [(record.sources[0] if record.sources else str(ann_file), record.filename) for record in records]
    paths, notes = _checked(entries, Path(root), f'the {split} split of {ann_file}')
    return ImageSelection(paths, f'in the {split} split of {ann_file}', notes)


# ------------------------------------------------------------------ the checks
def relative_to_root(entry: str, root: Path) -> str | None:
    """``entry`` (relative to ``root``, or absolute) as a normalised POSIX path relative to
    ``root``; None when it leads out of ``root``.

    An absolute path is inside ``root`` when it lies under ``root`` as given or under
    its real path (``root`` may be a symbolic link). The check is on the names:
    symbolic links further down are what the server checks when it serves a file.
    """
    if os.path.isabs(entry):
        target = os.path.normpath(entry)
        for base in dict.fromkeys((os.path.abspath(root), os.path.realpath(root))):
            relative = os.path.relpath(target, base)
            if not _leads_up(relative):
                return Path(relative).as_posix()
        return None
    relative = os.path.normpath(entry)
    return None if _leads_up(relative) else Path(relative).as_posix()


def _leads_up(relative: str) -> bool:
    return relative == os.pardir or relative.startswith(os.pardir + os.sep)


def _checked(entries: list[tuple[str, str]], root: Path, name: str) -> tuple[list[str], tuple[str, ...]]:
    """The paths of ``(where, entry)`` pairs relative to ``root``, each once, every file present.

    Raises:
        ImageListError: Entries leading out of ``root`` or naming no file: the first is
            named with its place, the others counted.
    """
    paths: dict[str, str] = {}  # path -> where it was first named
    problems: list[tuple[str, str]] = []
    repeats: list[tuple[str, str]] = []
    for where, entry in entries:
        path = relative_to_root(entry, root)
        if path is None:
            outside = f'{_shown(Path(entry))} is outside the image folder {root}'
            problems.append((where, f'{outside} (the index records paths relative to it)'))
        elif path in paths:
            repeats.append((where, f'repeats {paths[path]} ({path})'))
        elif problem := _file_problem(root / path):
            problems.append((where, problem))
        else:
            paths[path] = where
    if problems:
        raise ImageListError(_first_and_count(problems))
    entries_word = 'entry' if len(repeats) == 1 else 'entries'
    notes = (
        (f'{len(repeats)} repeated {entries_word} of {name} indexed once: {_first_and_count(repeats)}',)
        if repeats
        else ()
    )
    return list(paths), notes


def _file_problem(path: Path) -> str | None:
    if path.is_file():
        return None
    if path.is_dir():
        return f'a folder, not an image file: {_shown(path)}'
    return f'image not found: {_shown(path)}' + (' (a broken symbolic link)' if path.is_symlink() else '')


def _shown(path: Path) -> str:
    """``path`` for a one-line message: quoted with escapes when it holds a control character (a NUL, a line break)."""
    text = str(path)
    return repr(text) if any(unicodedata.category(char) == 'Cc' for char in text) else text


def _first_and_count(items: list[tuple[str, str]]) -> str:
    """``where: what`` of the first ``(where, what)`` item, then where the next few are and how many in all."""
    where, what = items[0]
    if len(items) == 1:
        return f'{where}: {what}'
    more = ', '.join(w for w, _ in items[1 : 1 + MORE_SHOWN]) + (', ...' if len(items) > 1 + MORE_SHOWN else '')
    return f'{where}: {what}; and {len(items) - 1} more: {more}'


# ------------------------------------------------------------ symbolic links
def links_leaving_root(root: str | os.PathLike, paths: Iterable[str]) -> list[tuple[str, str]]:
    """``(path, real path)`` of the ``paths`` (relative to ``root``) whose real path, symbolic
    links resolved, lies outside ``root``'s: files the search server does not show unless told to."""
    real_root = Path(os.path.realpath(root))
    leaving = []
    for path in paths:
        real = os.path.realpath(Path(root) / path)
        if not Path(real).is_relative_to(real_root):
            leaving.append((path, real))
    return leaving
