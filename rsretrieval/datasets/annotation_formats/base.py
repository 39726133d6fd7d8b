"""The contract of an annotation format: the records it reads and the format class."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .annotation_file import AnnotationError, AnnotationFile


@dataclass(frozen=True)
class ImageRecord:
    """One image and its captions.

    Attributes:
        filename: Image path relative to the image folder.
        captions: Raw captions, in file order.
        sources: Where each caption came from (``file:line`` or ``file[entry]``).
    """

    filename: str
    captions: tuple[str, ...]
    sources: tuple[str, ...]


def records_of_split(entries: Iterable[tuple[ImageRecord, str]], split: str, path: Path) -> list[ImageRecord]:
    """The records of ``split`` among ``(record, its split)`` pairs, in order.

    Every entry is consumed, so a file whose entries are all read (and checked)
    fails on a broken entry whichever split is asked for.

    Raises:
        AnnotationError: No entry is of ``split``; the splits the file holds are listed.
    """
    splits: set[str] = set()
    records = []
    for record, entry_split in entries:
        splits.add(entry_split)
        if entry_split == split:
            records.append(record)
    if split not in splits:
        raise AnnotationError(f'{path}: unknown split {split!r}; the file has splits {sorted(splits)}')
    return records


class AnnotationFormat(ABC):
    """One way a caption dataset's annotations are written down.

    A format is registered in ``ANNOTATION_FORMATS`` under the name a dataset
    config gives as ``ann_format``. When a config leaves the format to
    detection, every registered format's :meth:`detect` is asked and exactly
    one must answer yes, so a detector should recognise its own files only.

    Attributes:
        description: What the files look like, in a few words; detection
            errors list it beside the format's name.
    """

    description: str = ''

    @abstractmethod
    def detect(self, source: AnnotationFile) -> bool:
        """Whether ``source`` is written in this format.

        Cheap: the path, the first bytes (``source.head``) or the parsed JSON
        (``source.json()``, parsed once for all formats) should be enough.
        """

    @abstractmethod
    def read(self, source: AnnotationFile, split: str) -> list[ImageRecord]:
        """The records of ``split``, one per image in file order, each with a caption at least.

        Read every field through the typed accessors of :mod:`.fields`
        (``require_str``, ``require_list``, ...): a value of the wrong type
        then fails naming the file, the entry and the field.

        Raises:
            AnnotationError: Malformed content or a split the file does not
                hold, naming the file and the line or entry at fault.
        """
