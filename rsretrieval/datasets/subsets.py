"""Subsets of a caption dataset's images: spread over its classes, and a check of narrow ones.

mmengine's ``indices=N`` keeps the first ``N`` items. Annotation files list their images
class by class (UCM-Captions: 100 images of each of 21 classes in turn), so a first-``N``
subset can hold a few classes only and a model trained on it validates at chance.
:func:`spread_subset` draws ``N`` images over the whole set instead, and
:func:`narrow_subset_reason` says when an ``indices`` selection is that narrow.

Everything here is a pure function of the images' file names (in annotation order), the
number wanted and a seed: every rank of a distributed run computes the same subset.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

import numpy as np

#: ``<class>[_-]<number>``: the class is the part before the trailing number
#: (``baseballfield_452`` in RSITMD, ``airplane_001`` in NWPU-Captions).
_CLASS_STEM = re.compile(r'^(?P<cls>.*[^\W\d_].*?)[_-]?\d+$')


def check_subset(subset: dict | None) -> dict | None:
    """Validate the ``subset`` argument of a dataset.

    Args:
        subset: ``dict(num_images=N, seed=S)``; ``seed`` defaults to 0, so that
            ``--cfg-options ...subset.num_images=N`` alone is enough. ``None``: no subset.

    Returns:
        A plain dict with both keys, or ``None``.

    Raises:
        ValueError: A missing or unknown key, or a value that is not a suitable int.
    """
    if subset is None:
        return None
    subset = dict(subset)
    unknown = set(subset) - {'num_images', 'seed'}
    if 'num_images' not in subset or unknown:
        raise ValueError(
            f'subset takes the keys num_images (required) and seed (default 0), got {sorted(subset)}; '
            'e.g. subset=dict(num_images=320, seed=0)'
        )
    subset.setdefault('seed', 0)
    if not _is_int(subset['num_images']) or subset['num_images'] <= 0:
        raise ValueError(f"subset['num_images'] must be a positive int, got {subset['num_images']!r}")
    if not _is_int(subset['seed']) or subset['seed'] < 0:
        raise ValueError(f"subset['seed'] must be a non-negative int, got {subset['seed']!r}")
    return subset


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def image_classes(filenames: Sequence[str]) -> list[str | None]:
    """The scene class of each image, where its file name states one; ``None`` (unknown) otherwise.

    A class is read from the image's folder when every image lies in one and the
    folders name at least two classes (NWPU-Captions: ``airplane/airplane_001.jpg``);
    otherwise from the file name's stem before a trailing number
    (``baseballfield_452.tif`` is ``baseballfield``). A numeric name (UCM-Captions'
    and Sydney-Captions' ``452.tif``) has no class. When fewer than two classes are
    found, or so many that most images have one of their own, none is: such
    names (``img_<n>``, one folder for all, a date before the number) say nothing
    about how the images spread.

    Args:
        filenames: Image paths relative to the image folder, in annotation order.

    Returns:
        One class or ``None`` per file name, in the same order.
    """
    folders: list[str | None] = [posixpath.dirname(name.replace('\\', '/')) for name in filenames]
    if all(folders) and _tells_classes(folders):
        return folders
    classes = [_stem_class(name) for name in filenames]
    return classes if _tells_classes(classes) else [None] * len(filenames)


def _tells_classes(classes: Sequence[str | None]) -> bool:
    """At least two classes, shared by two images each on average: a name unique to
    its image (``IMG_20200101_1``) is an identifier, not a class."""
    known = [cls for cls in classes if cls is not None]
    return 2 <= len(set(known)) <= len(known) / 2


def _stem_class(filename: str) -> str | None:
    """``baseballfield`` for ``.../baseballfield_452.tif``; ``None`` for ``452.tif``."""
    stem = posixpath.splitext(posixpath.basename(filename.replace('\\', '/')))[0]
    match = _CLASS_STEM.match(stem)
    return match.group('cls') if match else None


def spread_subset(classes: Sequence[str | None], num_images: int, seed: int) -> list[int]:
    """Positions of ``num_images`` images spread over the whole set, ascending.

    The images are grouped by class (those of unknown class form one more group).
    Each group gets a share proportional to its size, and at least one image per
    group when ``num_images`` allows it. Within a group the images are drawn one
    from each of equal consecutive runs of the annotation order, at a random place
    in each run: where the classes are unknown and the file lists them in turn
    (UCM-Captions), every class still gets its share.

    Args:
        classes: The class of each image (``None``: unknown), in annotation order.
        num_images: How many images to keep; all of them when there are no more.
        seed: Seed of the draw: the same seed and classes give the same positions.

    Returns:
        Positions into ``classes``, ascending.
    """
    if num_images >= len(classes):
        return list(range(len(classes)))
    groups: dict[str | None, list[int]] = {}
    for position, cls in enumerate(classes):
        groups.setdefault(cls, []).append(position)
    keys = sorted(groups, key=lambda cls: (cls is None, cls or ''))
    rng = np.random.default_rng(seed)
    shares = _shares([len(groups[key]) for key in keys], num_images, rng)
    picked = [pos for key, share in zip(keys, shares) for pos in _spread_draw(groups[key], share, rng)]
    return sorted(picked)


def _shares(sizes: list[int], num_images: int, rng: np.random.Generator) -> list[int]:
    """How many images each group gives: proportional to its size (largest remainders),
    at least one each when ``num_images`` covers every group, at most its size.
    ``num_images`` is below the number of images, ``sum(sizes)``."""
    sizes_arr = np.asarray(sizes)
    if num_images < len(sizes):
        # fewer images than groups: one from each of num_images groups, drawn by size
        chosen = rng.choice(len(sizes), num_images, replace=False, p=sizes_arr / sizes_arr.sum())
        return [int(i in chosen) for i in range(len(sizes))]
    # one per group, the rest in proportion to what each group has left; the floors never
    # exceed a group's size, and a remainder only goes to a group whose floor is below it
    spare = sizes_arr - 1
    exact = (num_images - len(sizes)) * spare / spare.sum()  # spare.sum() > 0: some group has two images
    floors = np.floor(exact).astype(int)
    leftover = num_images - len(sizes) - int(floors.sum())
    order = np.argsort(-(exact - floors), kind='stable')
    floors[order[:leftover]] += 1
    return [1 + int(f) for f in floors]


def _spread_draw(positions: list[int], count: int, rng: np.random.Generator) -> list[int]:
    """``count`` of ``positions``: one at random from each of ``count`` equal consecutive runs."""
    if count == 0:
        return []
    bounds = [len(positions) * i // count for i in range(count + 1)]
    return [positions[int(rng.integers(start, end))] for start, end in zip(bounds[:-1], bounds[1:])]


def narrow_subset_reason(classes: Sequence[str | None], picked: Sequence[int]) -> str | None:
    """Why a selection of images is too narrow to train or validate on, or ``None``.

    Where classes are known: the selection covers fewer than half of them. Where
    they are not: the selection is one contiguous run of the annotation order
    holding fewer than half the images, which on a file listed class by class is
    a few classes.

    Args:
        classes: The class of each image of the set (``None``: unknown), in annotation order.
        picked: Positions of the selected images.

    Returns:
        A phrase such as ``'covers 4 of the 21 classes'`` or ``'keeps only the first
        320 of the 1680 images ...'``, or ``None``.
    """
    known = {cls for cls in classes if cls is not None}
    if known:
        covered = {classes[i] for i in picked if classes[i] is not None}
        if len(covered) < len(known) / 2:
            return f'covers {len(covered)} of the {len(known)} classes'
        return None
    images = sorted(set(picked))
    if not images:
        return 'keeps no image'
    contiguous = images == list(range(images[0], images[-1] + 1))
    if contiguous and len(images) < len(classes) / 2:
        run = _run(images[0], images[-1], len(classes))
        return f'keeps {run} in annotation order: a few classes, where the file lists its images class by class'
    return None


def _run(first: int, last: int, total: int) -> str:
    """``'only the first 320 of the 1680 images'``, ``'only the last ...'`` or ``'only images 5-9 (5) of the 20'``."""
    count = last - first + 1
    if first == 0:
        return f'only the first {count} of the {total} images'
    if last == total - 1:
        return f'only the last {count} of the {total} images'
    return f'only images {first}-{last} ({count}) of the {total}'


def class_coverage(classes: Sequence[str | None], picked: Sequence[int]) -> str:
    """``'21 of 21 classes'`` for a selection, or ``'classes unknown'``."""
    known = {cls for cls in classes if cls is not None}
    if not known:
        return 'classes unknown'
    covered = {classes[i] for i in picked if classes[i] is not None}
    return f'{len(covered)} of {len(known)} classes'
