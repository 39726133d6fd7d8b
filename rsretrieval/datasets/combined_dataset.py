"""Several caption datasets as one, with image and caption ids kept apart."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from mmengine.logging import MMLogger

from rsretrieval.registry import DATASETS

from .caption_dataset import BaseCaptionDataset, loaded_attribute

# the ground truth a part must expose: the combined dataset offsets it
_GROUND_TRUTH = ('image_paths', 'captions', 'img2txt', 'txt2img')
# what a part's build raises for its files or its config: re-raised naming the part
_PART_ERRORS = (OSError, ValueError, TypeError, KeyError)


@dataclass(frozen=True)
class DatasetPart:
    """One dataset inside a :class:`CombinedCaptionDataset`.

    Attributes:
        name: The part's name (metric keys read ``<name>/<key>``).
        images: Its images' global ids.
        captions: Its captions' global ids.
        metainfo: The part's own metainfo (split, sizes, subset, exclusions, ...).
    """

    name: str
    images: range
    captions: range
    metainfo: dict = field(default_factory=dict, compare=False, hash=False)


@DATASETS.register_module()
class CombinedCaptionDataset(BaseCaptionDataset):
    """Caption datasets concatenated: one training set, or one validation set evaluated part by part.

    Each part is built through ``DATASETS`` from its config (its own
    ``data_root``, ``split``, ``subset``, ``exclude``, ...) in the combined
    dataset's ``test_mode`` and without a pipeline: the combined ``pipeline``
    applies to every part. Image and caption ids are offset so that they are
    unique over all parts: the losses take two pairs with the same
    ``image_id`` as positives of each other, so image 0 of one dataset must
    never share an id with image 0 of another.

    In train mode there is one item per (image, caption) pair of every part,
    with the keys of :class:`RSCaptionDataset` (``img_path``, ``caption``,
    global ``image_id`` and ``caption_id``) and ``source``, the part's name.
    In test mode there is one item per image (``img_path``, ``image_id``,
    ``source``). In both modes ``image_paths``, ``captions``, ``img2txt`` and
    ``txt2img`` hold the global ground truth and ``parts`` a
    :class:`DatasetPart` per dataset, in order: the retrieval loops evaluate a
    combined validation set part by part, under ``<name>/<key>``, and average
    the parts for the unprefixed keys.

    Args:
        datasets: Dataset configs, e.g. ``dict(type='RSCaptionDataset', ...)``;
            at least one. A part's ``test_mode``, when given, must be the
            combined one; a part's ``pipeline`` must be absent or empty.
        names: One unique name per part, without ``/`` (default: each part's
            ``metainfo['dataset_name']``, which must then be unique).
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`
            (``pipeline``, ``test_mode``, ``lazy_init``, ``serialize_data``);
            not ``indices``: a part takes ``subset`` or ``indices`` itself, so
            that its ground truth follows.
    """

    METAINFO = dict(dataset_name='combined_captions')

    def __init__(self, datasets: Sequence[dict], names: Sequence[str] | None = None, **kwargs) -> None:
        if kwargs.get('indices') is not None:
            raise ValueError(
                'CombinedCaptionDataset takes no indices: give each part its own subset=dict(num_images=N, seed=0) '
                '(or indices), so that its ground truth follows'
            )
        self.dataset_cfgs = _check_part_configs(datasets, bool(kwargs.get('test_mode', False)))
        self.names = None if names is None else _check_names(names, len(self.dataset_cfgs))
        self._image_paths: list[str] = []
        self._captions: list[str] = []
        self._img2txt: list[list[int]] = []
        self._txt2img: list[int] = []
        self._parts: list[DatasetPart] = []
        super().__init__(**kwargs)

    def load_data_list(self) -> list[dict]:
        datasets = [self._build_part(i) for i in range(len(self.dataset_cfgs))]
        names = self.names or _default_names(datasets)
        self._image_paths, self._captions, self._img2txt, self._txt2img, self._parts = [], [], [], [], []
        data_list: list[dict] = []
        for name, dataset in zip(names, datasets):
            part = self._append_ground_truth(name, dataset)
            data_list.extend(_part_items(dataset, part))
            self._parts.append(part)
            _log_part(part, self.test_mode)
        self._metainfo.update(
            num_images=len(self._image_paths),
            num_captions=len(self._captions),
            parts=[
                dict(
                    name=p.name,
                    images=(p.images.start, p.images.stop),
                    captions=(p.captions.start, p.captions.stop),
                    metainfo=copy.deepcopy(p.metainfo),
                )
                for p in self._parts
            ],
        )
        return data_list

    def _build_part(self, index: int) -> BaseCaptionDataset:
        """Part ``index`` built through the registry, without a pipeline, its items kept unserialised."""
        cfg = dict(self.dataset_cfgs[index], test_mode=self.test_mode, pipeline=[], serialize_data=False)
        where = f'datasets[{index}]' + (f' ({self.names[index]})' if self.names else '')
        try:
            dataset = DATASETS.build(cfg)
        except _PART_ERRORS as err:
            named = _naming_part(err, where)
            if named is err:
                raise
            raise named from err
        missing = [name for name in _GROUND_TRUTH if not hasattr(dataset, name)]
        if missing:
            raise TypeError(
                f'{where}: {type(dataset).__name__} exposes no {", ".join(missing)}: a part must be a caption '
                'dataset (RSCaptionDataset or a subclass)'
            )
        dataset.full_init()
        return dataset

    def _append_ground_truth(self, name: str, dataset: BaseCaptionDataset) -> DatasetPart:
        """Add a part's images and captions to the global ground truth, ids offset; its :class:`DatasetPart`."""
        first_image, first_caption = len(self._image_paths), len(self._captions)
        self._image_paths.extend(os.path.abspath(p) for p in dataset.image_paths)
        self._captions.extend(dataset.captions)
        self._img2txt.extend([first_caption + t for t in caps] for caps in dataset.img2txt)
        self._txt2img.extend(first_image + i for i in dataset.txt2img)
        metainfo = dict(copy.deepcopy(dataset.metainfo), ann_file=getattr(dataset, 'ann_file', ''))
        return DatasetPart(
            name,
            range(first_image, len(self._image_paths)),
            range(first_caption, len(self._captions)),
            metainfo,
        )

    parts = loaded_attribute('_parts', 'The datasets combined (list[DatasetPart]), in order.')


def _check_part_configs(datasets: Sequence[dict], test_mode: bool) -> list[dict]:
    """The part configs as dicts; one line naming the part whose config cannot be combined."""
    if isinstance(datasets, (str, dict)) or not isinstance(datasets, Sequence) or not datasets:
        raise ValueError(f'datasets must be a non-empty list of dataset configs, got {datasets!r}')
    cfgs = []
    for i, cfg in enumerate(datasets):
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise TypeError(f'datasets[{i}] must be a dataset config dict with a type, got {type(cfg).__name__}')
        if cfg.get('pipeline'):
            raise ValueError(
                f'datasets[{i}] ({cfg["type"]}) has its own pipeline: the combined dataset applies its pipeline '
                'to every part; remove it'
            )
        if 'test_mode' in cfg and bool(cfg['test_mode']) != test_mode:
            raise ValueError(
                f'datasets[{i}] ({cfg["type"]}) has test_mode={cfg["test_mode"]} in a combined dataset with '
                f'test_mode={test_mode}: every part is read in the combined mode'
            )
        cfgs.append(dict(cfg))
    return cfgs


def _check_names(names: Sequence[str], count: int) -> list[str]:
    """``names`` as a list: one per part, unique, non-empty strings without ``/``."""
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ValueError(f'names must be a list of {count} strings, got {names!r}')
    names = list(names)
    if len(names) != count:
        raise ValueError(f'names has {len(names)} entries for {count} datasets: give one name per dataset')
    for name in names:
        if not isinstance(name, str) or not name or '/' in name:
            raise ValueError(
                f'names: {name!r} is not a name (a non-empty string without "/": metric keys read NAME/KEY)'
            )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f'names must be unique, {", ".join(repeated)} repeats')
    return names


def _default_names(datasets: list[BaseCaptionDataset]) -> list[str]:
    """Each part's ``metainfo['dataset_name']``, which must be unique."""
    names = [str(d.metainfo.get('dataset_name', '')) for d in datasets]
    try:
        return _check_names(names, len(datasets))
    except ValueError as err:
        raise ValueError(f"{err} among the parts' dataset names {names}: give names=[...]") from err


def _part_items(dataset: BaseCaptionDataset, part: DatasetPart) -> list[dict]:
    """A part's items with global ids, absolute image paths and ``source``."""
    items = []
    for item in dataset.data_list:
        item = dict(item, source=part.name, image_id=part.images.start + item['image_id'])
        if 'caption_id' in item:
            item['caption_id'] += part.captions.start
        if 'img_path' in item:
            item['img_path'] = os.path.abspath(item['img_path'])
        items.append(item)
    return items


def _log_part(part: DatasetPart, test_mode: bool) -> None:
    """One line: the part's name, where it comes from, its sizes, its id ranges and what was excluded."""
    meta = part.metainfo
    exclusions = meta.get('exclusions')
    excluded = (
        f'{exclusions["images"]} images ({exclusions["captions"]} captions) excluded by {exclusions["file"]} '
        f'(sha256 {exclusions["sha256"]})'
        if exclusions
        else 'no exclusion list'
    )
    source = f'{meta.get("ann_file") or meta.get("dataset_name", "")} [{meta.get("split", "?")}]'
    MMLogger.get_current_instance().info(
        f'combined dataset ({"test" if test_mode else "train"} mode), part {part.name!r}: {source}, '
        f'{len(part.images)} images, {len(part.captions)} captions (global image ids from {part.images.start}, '
        f'caption ids from {part.captions.start}); {excluded}'
    )


def _naming_part(err: BaseException, where: str) -> BaseException:
    """``err`` with ``where`` before its message, of the same type where the type allows it."""
    message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    try:
        return type(err)(f'{where}: {message}')
    except Exception:  # an exception type with other constructor arguments: keep it as it is
        return err
