"""A caption table as an annotation format: ``image<TAB>caption[<TAB>split]`` lines.

Many labelling tools and spreadsheets export captions as one tab-separated
line per caption. Registered as ``ann_format='tsv'``, such a file is read by
``RSCaptionDataset`` like the built-in formats::

    airport_1.jpg	an airport with two planes	train
    airport_1.jpg	two white planes near a terminal	train
    beach_7.jpg	waves on a sandy beach	test

- An optional first line ``image<TAB>caption`` or ``image<TAB>caption<TAB>split``
  (a header, as spreadsheets export) is not data.
- With a split column, a dataset's ``split`` selects the lines; without one the
  file holds one split (name the file per split: ``ann_file='captions_{split}.tsv'``).
- Every line has the same number of columns; the lines of one image, wherever
  they are, become its captions in file order; trailing blank lines end the file.

Detection claims a ``.tsv`` file whose first line has a tab.
"""

from __future__ import annotations

from rsretrieval.datasets import AnnotationError, AnnotationFile, AnnotationFormat, ImageRecord
from rsretrieval.datasets.annotation_formats import read_text_lines, require_str
from rsretrieval.registry import ANNOTATION_FORMATS

HEADERS = (('image', 'caption'), ('image', 'caption', 'split'))


@ANNOTATION_FORMATS.register_module('tsv')
class CaptionTableFormat(AnnotationFormat):
    """``image<TAB>caption[<TAB>split]`` lines (see the module docstring)."""

    description = 'a .tsv file of image<TAB>caption[<TAB>split] lines (example plugin)'

    def detect(self, source: AnnotationFile) -> bool:
        return source.path.suffix == '.tsv' and b'\t' in source.head.split(b'\n', 1)[0]

    def read(self, source: AnnotationFile, split: str) -> list[ImageRecord]:
        rows = _rows(source)
        has_split = bool(rows) and 'split' in rows[0][1]
        splits = {row['split'] for _, row in rows} if has_split else {split}
        if split not in splits:
            raise AnnotationError(f'{source.path}: unknown split {split!r}; the file has splits {sorted(splits)}')
        captions: dict[str, list[str]] = {}
        where: dict[str, list[str]] = {}
        for line, row in rows:
            if row.get('split', split) != split:
                continue
            captions.setdefault(row['image'], []).append(row['caption'])
            where.setdefault(row['image'], []).append(f'{source.path}:{line}')
        return [ImageRecord(image, tuple(caps), tuple(where[image])) for image, caps in captions.items()]


def _rows(source: AnnotationFile) -> list[tuple[int, dict[str, str]]]:
    """``(line number, {column: value})`` of every data line, the header left out.

    Raises:
        AnnotationError: A line without 2 or 3 fields, with an empty image
            name or split, or with another number of fields than the first data line
            (``file:line``).
    """
    rows = []
    for number, text in enumerate(read_text_lines(source.path, allow_empty=False, strip=False), start=1):
        fields = [field.strip() for field in text.split('\t')]
        if number == 1 and tuple(f.lower() for f in fields) in HEADERS:
            continue
        if len(fields) not in (2, 3):
            raise AnnotationError(
                f'{source.path}:{number}: expected image<TAB>caption[<TAB>split], got {len(fields)} field(s): '
                f'{text[:80]!r}'
            )
        if rows and len(fields) != len(rows[0][1]):
            raise AnnotationError(
                f'{source.path}:{number}: {len(fields)} fields, but line {rows[0][0]} has {len(rows[0][1])}; '
                'give every line a split, or none'
            )
        rows.append((number, _columns(fields, f'{source.path}:{number}')))
    return rows


def _columns(fields: list[str], where: str) -> dict[str, str]:
    """The fields of one line by column name; the image name and the split must not be empty.

    The library's typed accessors give the messages of the built-in formats
    (``captions.tsv:4: column "image" must be a non-empty string, got str ''``).
    """
    row = dict(zip(HEADERS[len(fields) - 2], fields))
    for column in ('image', 'split'):
        if column in row:
            require_str(row, column, where, non_empty=True, label=f'column "{column}"')
    return row
