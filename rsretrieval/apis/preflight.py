"""Checks of a run's data before its model is built, and the tidy-up of a run that never started.

A wrong ``data_root`` would otherwise surface only when the Runner builds its first
loader: after the model, the environment dump, the config and the hook table, and after
the work directory was made. :func:`check_run_data` builds each dataset the run will use
through the ``DATASETS`` registry (which reads and validates the annotations) and looks at
the images it lists: the folder exists, no listed file is missing from it, and a small
sample decodes. A dataset that exposes no image paths (a plugin's) is checked by building
it. :func:`tidy_unstarted_run` removes what a run made in its work directory when it fails
before its first training iteration.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import DefaultScope

from rsretrieval.datasets.transforms.loading import read_rgb
from rsretrieval.registry import DATASETS
from rsretrieval.utils.constructor_arguments import takes_argument
from rsretrieval.utils.quiet_logging import quiet_logs

#: How many images of each dataset are decoded: the first, the last and seeded others.
SAMPLE_SIZE = 8

# what a dataset raises for its files or its config: one line; anything else (a bug) keeps its traceback
DATA_ERRORS = (OSError, ValueError, TypeError, KeyError)

# mmengine's Runner names its log folder, and a config dump without a file name, by the start time
_TIMESTAMP = re.compile(r'\d{8}_\d{6}(\.py)?')


class DataCheckError(Exception):
    """A dataset of the run cannot be used; the message names the loader and the file."""


def loaders_of_training(cfg: Config) -> list[str]:
    """The dataloaders a training run builds: ``train_dataloader``, and ``val_dataloader`` when set."""
    return ['train_dataloader'] + (['val_dataloader'] if cfg.get('val_dataloader') is not None else [])


def check_run_data(cfg: Config, loaders: Sequence[str]) -> None:
    """Build the dataset of each of ``loaders`` and check the images it lists.

    Each process checks; with a process group, all of them raise the first
    problem any of them found, so that none goes on to wait for the others.
    What the datasets log is held back: the Runner's build of the same datasets
    logs it again, into the run's log file.

    Args:
        cfg: The run's config (``--cfg-options`` applied).
        loaders: Config keys of the dataloaders to check, e.g. ``['train_dataloader']``.

    Raises:
        DataCheckError: The first problem, in one line naming the loader and the file.
    """
    problem = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')), quiet_logs(level=logging.ERROR):
        for loader in loaders:
            problem = problem or _loader_problem(cfg.get(loader), loader)
    problem = _first_problem_of_all_processes(problem)
    if problem is not None:
        raise DataCheckError(problem)


def _loader_problem(loader_cfg: dict | None, loader: str) -> str | None:
    """What is wrong with the dataset of one dataloader config, or None."""
    dataset_cfg = loader_cfg.get('dataset') if isinstance(loader_cfg, dict) else None
    if not isinstance(dataset_cfg, dict):
        return None  # a dataset object or no dataset: nothing to read before the Runner
    where = f'{loader}.dataset'
    try:
        dataset = DATASETS.build(_for_checking(dataset_cfg))
    except DATA_ERRORS as err:
        return f'{where}: {_message(err)}{_missing_root_note(dataset_cfg, _message(err))}'
    try:
        return _images_problem(dataset, where)
    except OSError as err:  # a folder that cannot be listed
        return f'{where}: {err}'


def _for_checking(dataset_cfg: dict) -> dict:
    """The dataset config with what only a training run needs left out, where the dataset takes it.

    ``check_images=False``: the Runner's own build decodes every image; a sample finds a
    wrong folder. ``serialize_data=False``: mmengine's packing of the items for loader
    workers runs a full garbage collection, most of the check's time. The configs a dataset
    combines (``datasets=[...]``: ``CombinedCaptionDataset``, mmengine's ``ConcatDataset``)
    are changed the same way.
    """
    dataset_cfg = dict(dataset_cfg)
    parts = dataset_cfg.get('datasets')
    if isinstance(parts, (list, tuple)):
        dataset_cfg['datasets'] = [_for_checking(part) if isinstance(part, dict) else part for part in parts]
    dataset_type = dataset_cfg.get('type')
    dataset_class = DATASETS.get(dataset_type) if isinstance(dataset_type, str) else dataset_type
    if inspect.isclass(dataset_class):
        for name in ('check_images', 'serialize_data'):
            if takes_argument(dataset_class, name):
                dataset_cfg[name] = False
    return dataset_cfg

    return False


def _message(err: BaseException) -> str:
    """An exception's message; a ``KeyError`` without its quotes."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return text or type(err).__name__


def _missing_root_note(dataset_cfg: dict, message: str = '') -> str:
    """`` (data_root PATH does not exist)`` when it does not: the likely cause of the error.

    For a dataset that combines others (``datasets=[...]``), the root of the part that
    ``message`` names (``datasets[i] ...``, as ``CombinedCaptionDataset`` names it).
    """
    root = dataset_cfg.get('data_root')
    if isinstance(root, str) and root and not os.path.isdir(root):
        return f' (data_root {root} does not exist)'
    parts = dataset_cfg.get('datasets')
    if isinstance(parts, (list, tuple)):
        for index, part in enumerate(parts):
            if isinstance(part, dict) and message.startswith(f'datasets[{index}]'):
                return _missing_root_note(part)
    return ''


def _images_problem(dataset: object, where: str) -> str | None:
    """What is wrong with the images the dataset lists (its folder, missing files, a sample), or None."""
    folder = _image_folder(dataset)
    if folder is not None and not os.path.isdir(folder):
        return f'{where}: image folder not found: {folder}'
    paths = _image_paths(dataset)
    if not paths:
        return None
    return _missing_images(paths, dataset, where) or _unreadable_image(paths, where)


def _image_folder(dataset: object) -> str | None:
    """``data_prefix['img_path']`` of an mmengine dataset, when it names a folder."""
    prefix = getattr(dataset, 'data_prefix', None)
    folder = prefix.get('img_path') if isinstance(prefix, dict) else None
    return folder if isinstance(folder, str) and folder else None


def _image_paths(dataset: object) -> list[str]:
    """The image paths the dataset exposes (``image_paths``), or none."""
    paths = getattr(dataset, 'image_paths', None)
    if isinstance(paths, Sequence) and not isinstance(paths, str) and all(isinstance(p, str) for p in paths):
        return list(paths)
    return []


def _missing_images(paths: list[str], dataset: object, where: str) -> str | None:
    """Which listed images are not in their folders: one listing per folder, no ``stat`` per file."""
    listings: dict[str, set[str] | None] = {}
    missing = []
    for path in paths:
        folder, name = os.path.split(path)
        if folder not in listings:
            listings[folder] = set(os.listdir(folder or '.')) if os.path.isdir(folder or '.') else None
        if name not in (listings[folder] or ()):
            missing.append(path)
    if not missing:
        return None
    ann_file = getattr(dataset, 'ann_file', None)
    listed = f' listed in {ann_file}' if ann_file else ''
    if len(listings) == 1:
        folder, names = next(iter(listings.items()))
        if names is None:
            return f'{where}: image folder not found: {folder} ({len(paths)} images{listed})'
        if not names:
            return f'{where}: the image folder {folder} is empty ({len(paths)} images{listed})'
    return f'{where}: {len(missing)} of {len(paths)} images{listed} are missing, e.g. {missing[0]}'


def _unreadable_image(paths: list[str], where: str) -> str | None:
    """The first of a sample of images (first, last, seeded others) that does not decode, or None."""
    for path in _sample(paths):
        try:
            read_rgb(path)
        except OSError as err:
            return f'{where}: unreadable image: {err}'
    return None


def _sample(paths: list[str], size: int = SAMPLE_SIZE) -> list[str]:
    """The first and last path and ``size - 2`` others drawn with a fixed seed, in list order."""
    if len(paths) <= size:
        return paths
    middle = np.random.default_rng(0).choice(np.arange(1, len(paths) - 1), size - 2, replace=False)
    return [paths[i] for i in sorted({0, len(paths) - 1, *middle.tolist()})]


def _first_problem_of_all_processes(problem: str | None) -> str | None:
    """The first problem any process found (``problem`` itself without a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return problem
    problems: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(problems, problem)
    return next((p for p in problems if p is not None), None)


class StartMark(Hook):
    """Notes that training began: ``before_train_iter`` was called once."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.started = False

    def before_train_iter(self, runner: object, batch_idx: int, data_batch: object = None) -> None:
        self.started = True


@contextlib.contextmanager
def tidy_unstarted_run(work_dir: str, config_name: str | None, enabled: bool = True) -> Iterator[StartMark]:
    """Remove what the run made in ``work_dir`` if the block fails before training began.

    Register the :class:`StartMark` it yields on the Runner. On an exception (Ctrl-C
    included) raised before the first training iteration, the log folders and the config
    dump that appeared in ``work_dir`` during the block are removed, then ``work_dir`` and
    the folders above it that the run made, if nothing else is in them. What existed
    before, and anything else (a checkpoint), is kept.

    Args:
        work_dir: The run's work directory.
        config_name: The file name under which mmengine dumps the config (the config
            file's base name), or None.
        enabled: False on processes other than the first: one process tidies.
    """
    work = Path(work_dir).absolute()
    before = set(os.listdir(work)) if work.is_dir() else None
    made = _first_missing_folder(work)
    mark = StartMark()
    try:
        yield mark
    except BaseException:
        if enabled and not mark.started:
            _remove_run_files(work, before, config_name)
            _remove_empty_folders(work, made)
        raise


def _first_missing_folder(path: Path) -> Path | None:
    """The highest folder of ``path`` (itself included) that does not exist yet, or None."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def _remove_run_files(work: Path, before: set[str] | None, config_name: str | None) -> None:
    """Remove the timestamped log folders and the config dump that are new since ``before``."""
    if not work.is_dir():
        return
    for name in set(os.listdir(work)) - (before or set()):
        path = work / name
        if _TIMESTAMP.fullmatch(name) and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif (name == config_name or _TIMESTAMP.fullmatch(name)) and path.is_file():
            path.unlink(missing_ok=True)


def _remove_empty_folders(work: Path, made: Path | None) -> None:
    """Remove ``work`` and its parents up to ``made`` (the folders the run made) while they are empty."""
    if made is None:
        return
    for folder in (work, *work.parents):
        with contextlib.suppress(OSError):  # not empty, or gone: keep going up only while removed
            folder.rmdir()
        if folder.exists() or folder == made:
            return
