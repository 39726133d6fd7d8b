"""What the leakage check reads: named inputs turned into groups of image files.

An input is a dataset config (``NAME=CONFIG``: every split its train, val and test
dataloaders name) or a folder of images (``NAME=DIR``, held out unless marked
``:train``). Each split of a config, and each folder, is one :class:`ImageGroup`;
the check compares images across groups only. An image is named as its
annotation file names it (the path relative to the dataset's image folder), so
that an exclusion list works wherever the data lives.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope

from rsretrieval.datasets.exclusions import normalise_filename
from rsretrieval.registry import DATASETS
from rsretrieval.utils.cfg_options import merge_cfg_options
from rsretrieval.utils.config_errors import ConfigError
from rsretrieval.utils.config_files import read_config
from rsretrieval.utils.constructor_arguments import takes_argument

#: File name endings read from a folder (compared in lower case).
IMAGE_EXTENSIONS = ('.bmp', '.gif', '.jpeg', '.jpg', '.png', '.tif', '.tiff', '.webp')
#: Splits whose images training must never see; every other split of a config is a training split.
DEFAULT_HELD_OUT_SPLITS = ('val', 'test', 'holdout')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
#: Folder roles, the suffix of ``NAME=DIR:ROLE``; the role is the folder's split in the results.
FOLDER_ROLES = ('heldout', 'train')
# A subset or an exclusion changes which images of a split train: the check reads every image of the
# split, so that its list stays right whatever subset is drawn after the exclusion.
_PARTIAL_SPLIT_ARGUMENTS = ('indices', 'subset', 'exclude')
_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.+-]*')
# a comma that starts a KEY=VALUE option (a comma inside a value, as in a list, does not)
_OPTION_START = re.compile(r',(?=[A-Za-z_][\w.]*=)')


class LeakCheckError(ValueError):
    """An input the leakage check cannot use; the message (one line) names the input and the file."""


@dataclass(frozen=True)
class InputSpec:
    """One input as given on the command line.

    Attributes:
        name: Its name in the results and the exclusion list (``'ucm'``).
        kind: ``'config'`` or ``'folder'``.
        path: The config file or the folder.
        options: Config overrides for this input alone (``data_root=...``), parsed as ``--cfg-options``.
        held_out: For a folder: whether its images are held out (the default) or training images.
    """

    name: str
    kind: str
    path: str
    options: dict = field(default_factory=dict)
    held_out: bool = True


@dataclass(frozen=True)
class ImageRef:
    """One image of a group.

    Attributes:
        source: The input's name.
        split: Its split (a folder: ``'heldout'`` or ``'train'``).
        filename: Its path relative to the group's folder, ``/``-separated.
        path: The file.
        held_out: Whether its group is held out.
    """

    source: str
    split: str
    filename: str
    path: str
    held_out: bool

    @property
    def label(self) -> str:
        """``'source/split/filename'``."""
        return f'{self.source}/{self.split}/{self.filename}'


@dataclass(frozen=True)
class ImageGroup:
    """The images of one split of a dataset, or of one folder.

    Attributes:
        source: The input's name.
        split: The split (``'train'``, ``'val'``, ``'test'``, ...); for a folder its role,
            ``'heldout'`` or ``'train'``.
        held_out: Whether training must not see these images.
        root: The folder the file names are relative to (absolute).
        filenames: ``/``-separated paths relative to ``root`` (as the annotation file lists them).
        origin: Where the list came from, for the report (``'configs/cmpagl_ucm.py: test_dataloader'``).
        other_files: Files of a folder that were not read, not being images by their name.
    """

    source: str
    split: str
    held_out: bool
    root: str
    filenames: tuple[str, ...]
    origin: str
    other_files: int = 0

    @property
    def label(self) -> str:
        """``'source/split'``."""
        return f'{self.source}/{self.split}'

    def image(self, index: int) -> ImageRef:
        """Image ``index`` of the group."""
        name = self.filenames[index]
        return ImageRef(self.source, self.split, name, os.path.join(self.root, name), self.held_out)


def parse_config_spec(text: str) -> InputSpec:
    """``NAME=CONFIG[,KEY=VALUE...]``: a dataset config, with overrides for it alone.

    Raises:
        LeakCheckError: No ``NAME=``, a bad name, or an override without ``=``.
    """
    name, rest = _split_name(text, 'NAME=CONFIG[,KEY=VALUE...]')
    path, *options = _OPTION_START.split(rest)
    if not path:
        raise LeakCheckError(f'{text!r}: no config file after {name}=')
    return InputSpec(name, 'config', path, _parse_options(options, text))


def parse_folder_spec(text: str) -> InputSpec:
    """``NAME=DIR[:heldout|:train]``: a folder of images, held out unless marked ``:train``.

    Raises:
        LeakCheckError: No ``NAME=``, a bad name, or no folder.
    """
    name, path = _split_name(text, 'NAME=DIR[:heldout|:train]')
    role = 'heldout'
    head, sep, tail = path.rpartition(':')
    if sep and tail in FOLDER_ROLES:
        path, role = head, tail
    if not path:
        raise LeakCheckError(f'{text!r}: no folder after {name}=')
    return InputSpec(name, 'folder', path, held_out=role == 'heldout')


def _split_name(text: str, form: str) -> tuple[str, str]:
    """``(NAME, rest)`` of ``NAME=rest``, the name checked."""
    name, sep, rest = text.partition('=')
    if not sep:
        raise LeakCheckError(f'{text!r}: expected {form}')
    if not _NAME.fullmatch(name):
        raise LeakCheckError(
            f'{text!r}: the name {name!r} must be letters, digits and _ . + - (no / or spaces), expected {form}'
        )
    return name, rest


def _parse_options(pairs: list[str], text: str) -> dict:
    """``['data_root=/x', 'split=test']`` parsed as ``--cfg-options`` parses them."""
    if not pairs:
        return {}
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--options', nargs='+', action=DictAction)
    return dict(parser.parse_args(['--options', *pairs]).options)


def check_unique_names(specs: Sequence[InputSpec]) -> None:
    """Every input has its own name.

    Raises:
        LeakCheckError: A name given twice.
    """
    seen: dict[str, InputSpec] = {}
    for spec in specs:
        if spec.name in seen:
            raise LeakCheckError(f'the name {spec.name!r} is given twice ({seen[spec.name].path} and {spec.path})')
        seen[spec.name] = spec


def read_groups(
    specs: Sequence[InputSpec],
    held_out_splits: Sequence[str] = DEFAULT_HELD_OUT_SPLITS,
    cfg_options: dict | None = None,
) -> list[ImageGroup]:
    """The image groups of every input, in the order given.

    Args:
        specs: The inputs.
        held_out_splits: The splits of a config that are held out.
        cfg_options: Overrides applied to every config (before its own).

    Raises:
        LeakCheckError: A name given twice, or an input that cannot be read (one line naming it).
    """
    check_unique_names(specs)
    groups = []
    for spec in specs:
        if spec.kind == 'folder':
            groups.append(folder_group(spec))
        else:
            groups.extend(config_groups(spec, held_out_splits, cfg_options))
    return groups


def folder_group(spec: InputSpec) -> ImageGroup:
    """Every image file under ``spec.path``, recursively, sorted by path.

    Raises:
        LeakCheckError: The folder is missing, cannot be listed, or holds no image file.
    """
    where = f'{spec.name}={spec.path}'
    if not os.path.exists(spec.path):
        raise LeakCheckError(f'{where}: folder not found: {spec.path}')
    if not os.path.isdir(spec.path):
        raise LeakCheckError(f'{where}: not a folder: {spec.path}')
    filenames, others = _list_images(spec.path, where)
    if not filenames:
        raise LeakCheckError(
            f'{where}: no image file in {spec.path} ({others} other files; read: {", ".join(IMAGE_EXTENSIONS)})'
        )
    role = 'heldout' if spec.held_out else 'train'
    return ImageGroup(spec.name, role, spec.held_out, os.path.abspath(spec.path), tuple(filenames), spec.path, others)


def _list_images(folder: str, where: str) -> tuple[list[str], int]:
    """The image files under ``folder`` (relative, ``/``-separated, sorted) and the count of other files."""

    def fail(err: OSError) -> None:
        raise LeakCheckError(f'{where}: cannot list {err.filename}: {err.strerror}')

    images, others = [], 0
    for top, dirs, files in os.walk(folder, onerror=fail):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                images.append(normalise_filename(os.path.relpath(os.path.join(top, name), folder)))
            else:
                others += 1
    return images, others


def config_groups(
    spec: InputSpec, held_out_splits: Sequence[str] = DEFAULT_HELD_OUT_SPLITS, cfg_options: dict | None = None
) -> list[ImageGroup]:
    """One group per split that the config's train, val and test dataloaders read.

    Two loaders that read the same split with the same dataset (a test loader that
    is the val loader) give one group. ``indices``, ``subset`` and ``exclude`` of a
    dataset are left out: the check reads every image of a split.

    Raises:
        LeakCheckError: The config cannot be read or overridden, a loader's dataset cannot be
            built or lists no image paths, or two loaders read one split from different datasets.
    """
    try:
        cfg = merge_cfg_options(merge_cfg_options(read_config(spec.path), cfg_options), spec.options)
    except ConfigError as err:
        raise LeakCheckError(f'{spec.name}={spec.path}: {err}') from err
    groups: dict[str, ImageGroup] = {}
    for loader in LOADERS:
        dataset_cfg = _dataset_cfg(cfg, loader)
        if dataset_cfg is None:
            continue
        group = _split_group(cfg, dataset_cfg, spec, loader, held_out_splits)
        known = groups.get(group.split)
        if known is None:
            groups[group.split] = group
        elif (known.root, known.filenames) != (group.root, group.filenames):
            raise LeakCheckError(
                f'{spec.name}={spec.path}: {known.origin.split(": ")[-1]} and {loader} read split '
                f'{group.split!r} from different datasets; give them as two inputs'
            )
        else:
            groups[group.split] = ImageGroup(**{**vars(known), 'origin': f'{known.origin}, {loader}'})
    if not groups:
        raise LeakCheckError(f'{spec.name}={spec.path}: the config has no {", ".join(LOADERS)} with a dataset')
    return list(groups.values())


def _dataset_cfg(cfg: Config, loader: str) -> dict | None:
    """The dataset config of ``loader``, or None where the config has no such loader."""
    loader_cfg = cfg.get(loader)
    if not loader_cfg:
        return None
    dataset_cfg = loader_cfg.get('dataset')
    return dict(dataset_cfg) if isinstance(dataset_cfg, dict) else None


def _split_group(
    cfg: Config, dataset_cfg: dict, spec: InputSpec, loader: str, held_out_splits: Sequence[str]
) -> ImageGroup:
    """Build one loader's dataset and name its images."""
    where = f'{spec.name}={spec.path}: {loader}.dataset'
    try:
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
            dataset = DATASETS.build(_for_listing(dataset_cfg))
    except (OSError, ValueError, TypeError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        raise LeakCheckError(f'{where}: {message}') from err
    paths = getattr(dataset, 'image_paths', None)
    prefix = getattr(dataset, 'data_prefix', None)
    root = (prefix.get('img_path') if isinstance(prefix, dict) else None) or getattr(dataset, 'data_root', None)
    if not isinstance(paths, Sequence) or not all(isinstance(p, str) for p in paths) or not root:
        raise LeakCheckError(
            f'{where}: {type(dataset).__name__} lists no image_paths under one image folder (data_prefix or '
            "data_root; a combined dataset's parts each have their own): give each dataset's own config as "
            '--config NAME=CONFIG, or its image folder as --folder NAME=DIR'
        )
    split = str(getattr(dataset, 'split', dataset_cfg.get('split', 'train')))
    filenames = tuple(normalise_filename(os.path.relpath(p, root)) for p in paths)
    origin = f'{spec.path}: {loader}'
    return ImageGroup(spec.name, split, split in held_out_splits, os.path.abspath(root), filenames, origin)


def _for_listing(dataset_cfg: dict) -> dict:
    """The dataset config for listing a whole split's images: no pipeline, no subset, no exclusion,
    one item per image, nothing decoded (the check decodes every image itself)."""
    dataset_cfg = {k: v for k, v in dataset_cfg.items() if k not in _PARTIAL_SPLIT_ARGUMENTS}
    dataset_type = dataset_cfg.get('type')
    dataset_class = DATASETS.get(dataset_type) if isinstance(dataset_type, str) else dataset_type
    listing = dict(pipeline=[], test_mode=True, lazy_init=False, serialize_data=False, check_images=False)
    for name, value in listing.items():
        if inspect.isclass(dataset_class) and takes_argument(dataset_class, name):
            dataset_cfg[name] = value
    return dataset_cfg

    return False
