"""The remote-sensing image-caption dataset."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger
from PIL import Image, UnidentifiedImageError

from rsretrieval.registry import DATASETS

from .annotation_formats import AnnotationError, ImageRecord, check_annotation_format, load_annotations
from .exclusions import ExclusionList, read_exclusion_list, split_excluded, verify_excluded_files
from .subsets import check_subset, class_coverage, image_classes, narrow_subset_reason, spread_subset
from .text import clean_caption
from .transforms.loading import read_rgb


def loaded_attribute(name: str, doc: str) -> property:
    """A read-only property that returns ``self.<name>`` after loading the
    annotations (``lazy_init=True`` defers them to first use)."""

    def get(self: BaseDataset) -> list:
        if not self._fully_initialized:
            self.full_init()
        return getattr(self, name)

    return property(get, doc=doc)


class BaseCaptionDataset(BaseDataset):
    """What every caption dataset for retrieval shares: seeded items and the ground truth.

    A subclass fills ``_image_paths``, ``_captions``, ``_img2txt`` and
    ``_txt2img`` in ``load_data_list``; the retrieval loops, the metric and the
    tools read them as ``image_paths``, ``captions``, ``img2txt`` and ``txt2img``.
    """

    def __getitem__(self, idx: int | tuple[int, int]) -> dict:
        """Item ``idx``; ``(idx, seed)`` (from :class:`ReproducibleSampler`) also
        gives the pipeline a generator ``results['rng']`` seeded with ``seed``,
        which the random transforms use instead of numpy's global one."""
        if isinstance(idx, tuple):
            index, seed = idx
            self._sample_rng = np.random.default_rng(seed)
            try:
                return super().__getitem__(index)
            finally:
                self._sample_rng = None
        return super().__getitem__(idx)

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        rng = getattr(self, '_sample_rng', None)
        if rng is not None:
            info['rng'] = rng
        return info

    image_paths = loaded_attribute('_image_paths', 'Image paths (list[str]); the index is the image id.')
    captions = loaded_attribute('_captions', 'Cleaned captions (list[str]); the index is the caption id.')
    img2txt = loaded_attribute('_img2txt', 'Caption ids of every image (list[list[int]]).')
    txt2img = loaded_attribute('_txt2img', 'Image id of every caption (list[int]).')


@DATASETS.register_module()
class RSCaptionDataset(BaseCaptionDataset):
    """Images with several captions each (RSICD, RSITMD, UCM, Sydney, NWPU, ...).

    In train mode the dataset has one item per (image, caption) pair with the
    keys ``img_path``, ``caption``, ``image_id`` (image index in the split) and
    ``caption_id``. In test mode it has one item per image (``img_path``,
    ``image_id``) and exposes the captions and ground truth as attributes:

    - ``image_paths``: list of image paths, index = image id;
    - ``captions``: list of cleaned captions, index = caption id;
    - ``img2txt[i]``: caption ids of image ``i``;
    - ``txt2img[t]``: image id of caption ``t``.

    Everything is checked when the dataset is built: annotation syntax, the
    split, empty captions, and that every image exists and is a readable image
    (its header is decoded), so a bad file fails before training starts.

    Args:
        ann_file: Annotation file (or precomp folder), relative to ``data_root``.
            ``{split}`` in it is replaced by ``split``, for formats that keep
            one file per split (ALBEF: ``'rsitmd_{split}.json'``).
        data_root: Dataset root.
        data_prefix: ``dict(img_path=...)``, the image folder under ``data_root``.
        ann_format: A format registered in ``ANNOTATION_FORMATS``, or
            ``'auto'`` (default): the one registered format that recognises
            ``ann_file``. Built in: ``'karpathy'``, ``'precomp'``, ``'albef'``
            and ``'nwpu'`` (NWPU-Captions' ``dataset_nwpu.json``; its image
            paths are ``<class>/<filename>`` under ``data_prefix['img_path']``).
        split: ``'train'``, ``'val'`` or ``'test'``; ``'holdout'`` with
            ``holdout`` set.
        holdout: ``dict(split='train', num_images=N, seed=S)`` carves a fixed
            validation set out of a split, for datasets that ship none
            (RSITMD): ``N`` images drawn with seed ``S`` from the split's
            images sorted by file name (so every annotation format of a
            release gives the same ones). ``split='holdout'`` loads them,
            ``split=holdout['split']`` loads the split without them (their
            captions leave training); other splits are untouched. Give the
            same ``holdout`` to the train and val datasets.
        max_words: Captions are cut to this many words.
        check_images: What is checked of every image at build time:
            ``'full'`` (default; ``True`` too) decodes each image completely,
            so a truncated or corrupt file fails here, naming it, and never
            mid-epoch (threads share the work: the 1,680 UCM-Captions
            training images take 1.4 s on 2 cores); ``'header'`` only opens and
            verifies headers (0.5 s; a truncated JPEG passes); ``False`` checks
            nothing.
        empty_captions: What to do with a caption that is empty after
            cleaning: ``'error'`` (default) raises naming its file and line;
            ``'drop'`` removes it and logs how many were dropped and where (the
            RSITMD release has 20 empty lines in ``train_caps.txt``: all five
            captions of four images). With ``'drop'`` an image left without
            captions is dropped too, and the log names it.
        indices: mmengine's subset (an int ``N``: the first ``N``, ``-N``: the
            last ``N``; or a sequence of positions). In test mode it selects
            *images*, and their captions, ``img2txt`` and ``txt2img`` follow with
            ids renumbered, so evaluation, saved matrices, rerankers and tools
            see one consistent subset; in train mode it selects (image,
            caption) pairs. Only the selected images are checked. Annotation
            files list their images class by class, so a warning is logged when
            the selection covers fewer than half the classes, or, where the
            file names state no class, is one run of fewer than half the images.
        subset: ``dict(num_images=N, seed=S)`` (``seed`` defaults to 0): ``N``
            images spread over the whole split, in both modes with all their
            captions: stratified over the classes the file names state
            (``<class>/...`` folders, ``<class>_<n>`` stems), else drawn one
            from each of ``N`` equal runs of the annotation order. The same
            images for a seed on every rank; see
            :mod:`rsretrieval.datasets.subsets`. Not with ``indices``.
        exclude: ``dict(file=PATH, source=NAME)``: drop every image that the
            exclusion list ``PATH`` (written by
            ``tools/analysis_tools/check_leaks.py``, read by
            :func:`~rsretrieval.datasets.exclusions.read_exclusion_list`)
            names for ``NAME`` (the dataset's name in the check) and this
            dataset's ``split``, with all its captions, before ``indices`` or
            ``subset`` select. Each dropped file must have the sha256 the list
            gives, and the split must hold every image the list names for it:
            otherwise the list was made from other data, and building fails
            naming the list, the entry and the file. One line logs how many
            images and captions were dropped and the list's sha256;
            ``metainfo['exclusions']`` records them.
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`
            (``pipeline``, ``test_mode``, ``lazy_init``, ...).
    """

    METAINFO = dict(dataset_name='rs_captions')

    def __init__(
        self,
        ann_file: str,
        data_root: str = '',
        data_prefix: dict | None = None,
        ann_format: str = 'auto',
        split: str = 'train',
        max_words: int = 30,
        check_images: bool | str = 'full',
        empty_captions: str = 'error',
        holdout: dict | None = None,
        indices: int | Sequence[int] | None = None,
        subset: dict | None = None,
        exclude: dict | None = None,
        **kwargs,
    ) -> None:
        self.holdout = _check_holdout(holdout, split)
        self.exclude = _check_exclude(exclude)
        # applied here, to images or pairs with the ground truth renumbered; mmengine's own
        # subset would cut data_list alone and leave the ground truth of the full split
        if indices is not None and subset is not None:
            raise ValueError(
                'give indices or subset, not both: indices is the first N (image, caption) pairs in training, '
                'the first N images in test mode, or a list of positions; subset=dict(num_images=N, seed=0) '
                'is N images spread over the whole split'
            )
        self.indices = indices
        self.subset = check_subset(subset)
        if empty_captions not in ('error', 'drop'):
            raise ValueError(f"empty_captions must be 'error' or 'drop', got {empty_captions!r}")
        self.empty_captions = empty_captions
        check_annotation_format(ann_format)
        self.ann_format = ann_format
        self.split = split
        # the held-out images are read from the split they are carved from
        self.source_split = self.holdout['split'] if split == 'holdout' else split
        ann_file = str(ann_file).replace('{split}', self.source_split)
        self.max_words = max_words
        if check_images is True:
            check_images = 'full'
        if check_images not in ('full', 'header', False, None):
            raise ValueError(f"check_images must be 'full', 'header' or False, got {check_images!r}")
        self.check_images = check_images or None
        self._captions: list[str] = []
        self._img2txt: list[list[int]] = []
        self._txt2img: list[int] = []
        self._image_paths: list[str] = []
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix if data_prefix is not None else dict(img_path=''),
            **kwargs,
        )

    # ------------------------------------------------------------------ loading
    def load_data_list(self) -> list[dict]:
        records = load_annotations(self.ann_file, self.source_split, self.ann_format)
        if self.holdout is not None and self.source_split == self.holdout['split']:
            held_out = holdout_filenames(records, self.holdout['num_images'], self.holdout['seed'])
            keep = self.split == 'holdout'
            records = [rec for rec in records if (rec.filename in held_out) == keep]
        image_root = self.data_prefix.get('img_path', '') or self.data_root
        if self.exclude is not None:
            records = self._drop_excluded(records, image_root)
        images = self._clean_captions(records)  # [(record, captions)]
        total = len(images)
        if self.indices is not None or self.subset is not None:
            images = self._take_subset(images)
        paths = [os.path.join(image_root, rec.filename) for rec, _ in images]
        if self.check_images:
            _check_images(paths, [rec for rec, _ in images], full=self.check_images == 'full')
        self._image_paths, self._captions, self._img2txt, self._txt2img = [], [], [], []
        for (_, captions), path in zip(images, paths):
            image_id = len(self._image_paths)
            self._image_paths.append(path)
            self._img2txt.append(list(range(len(self._captions), len(self._captions) + len(captions))))
            self._captions.extend(captions)
            self._txt2img.extend([image_id] * len(captions))
        self._metainfo.update(split=self.split, num_images=len(self._image_paths), num_captions=len(self._captions))
        if self.holdout is not None:
            self._metainfo.update(holdout=dict(self.holdout))
        if self.indices is not None or self.subset is not None:
            self._metainfo.update(subset_of=total)
        if self.subset is not None:
            self._metainfo.update(subset=dict(self.subset))
        if self.test_mode:
            return [dict(img_path=p, image_id=i) for i, p in enumerate(self._image_paths)]
        return [
            dict(img_path=self._image_paths[img], caption=self._captions[t], image_id=img, caption_id=t)
            for t, img in enumerate(self._txt2img)
        ]

    def _drop_excluded(self, records: list[ImageRecord], image_root: str) -> list[ImageRecord]:
        """The records without the images the exclusion list names for this source and split,
        the files dropped checked against the list's sha256 values."""
        if not os.path.isfile(self.exclude['file']):
            raise FileNotFoundError(
                f'exclusion list {self.exclude["file"]} not found: write it with '
                'tools/analysis_tools/check_leaks.py first (docs/leakage.md), or train without exclude'
            )
        exclusions = read_exclusion_list(self.exclude['file'])
        where = f'{self.ann_file} [{self.split}]'
        entries = exclusions.for_split(self.exclude['source'], self.split)
        _check_list_covers(exclusions, self.exclude['source'], self.split, where)
        kept, excluded = split_excluded(records, entries, exclusions.path, where)
        verify_excluded_files(excluded, image_root, exclusions.path)
        self._report_exclusions(exclusions, [rec for rec, _ in excluded], len(records))
        return kept

    def _report_exclusions(self, exclusions: ExclusionList, excluded: list[ImageRecord], total: int) -> None:
        """What the list removed, in ``metainfo['exclusions']`` and one log line; a warning when a
        list that does not say what it checked names no image of this source at all."""
        source = self.exclude['source']
        captions = sum(len(rec.captions) for rec in excluded)
        self._metainfo.update(
            exclusions=dict(
                file=exclusions.path, sha256=exclusions.sha256, source=source, images=len(excluded), captions=captions
            )
        )
        where = f'{self.ann_file} [{self.split}]'
        logger = MMLogger.get_current_instance()
        logger.info(
            f'{where}: excluded {len(excluded)} of {total} images ({captions} captions) listed for '
            f'{source!r} in {exclusions.path} (sha256 {exclusions.sha256})'
        )
        if exclusions.checked_splits is None and source not in exclusions.sources:
            logger.warning(
                f'{where}: the exclusion list {exclusions.path} names no image of source {source!r} in any split '
                f'(its sources: {", ".join(exclusions.sources) or "none"}); check that {source!r} is the name the '
                'leakage check gave this dataset'
            )

    def _take_subset(self, images: list[tuple[ImageRecord, list[str]]]) -> list[tuple[ImageRecord, list[str]]]:
        """The images (with the captions) that ``indices`` or ``subset`` keeps, logged in one
        line; a narrow ``indices`` selection is warned about in another."""
        classes = image_classes([rec.filename for rec, _ in images])
        if self.subset is not None:
            selected = [(i, images[i][1]) for i in spread_subset(classes, **self.subset)]
            how = f'subset seed {self.subset["seed"]}'
        else:
            selected = self._select(images)
            how = 'indices'
            self._warn_if_narrow(classes, [i for i, _ in selected])
        pairs = sum(len(caps) for _, caps in images)
        chosen = f'{len(selected)} of {len(images)} images'
        if not self.test_mode:
            chosen += f' ({sum(len(caps) for _, caps in selected)} of {pairs} pairs)'
        coverage = class_coverage(classes, [i for i, _ in selected])
        MMLogger.get_current_instance().info(f'{self.ann_file} [{self.split}]: subset of {chosen}, {coverage} ({how})')
        return [(images[i][0], captions) for i, captions in selected]

    def _select(self, images: list[tuple[ImageRecord, list[str]]]) -> list[tuple[int, list[str]]]:
        """The ``indices`` subset as (image position, captions): images in test mode; in train
        mode (image, caption) pairs, grouped back by image in the order of their first selected pair."""
        units = images if self.test_mode else [(i, c) for i, (_, caps) in enumerate(images) for c in caps]
        picked = _positions(self.indices, len(units), 'images' if self.test_mode else '(image, caption) pairs')
        if self.test_mode:
            return [(i, images[i][1]) for i in picked]
        by_image: dict[int, list[str]] = {}
        for i in picked:
            image, caption = units[i]
            by_image.setdefault(image, []).append(caption)
        return list(by_image.items())

    def _warn_if_narrow(self, classes: list[str | None], picked: list[int]) -> None:
        """One warning line when ``indices`` keeps a corner of the split (a few classes)."""
        reason = narrow_subset_reason(classes, picked)
        if reason is None:
            return
        given = f'={self.indices}' if isinstance(self.indices, int) else f' ({len(self.indices)} positions)'
        MMLogger.get_current_instance().warning(
            f'{self.ann_file} [{self.split}]: indices{given} {reason}; training or validating on it says little '
            f'about the whole split; subset=dict(num_images={len(picked)}, seed=0) keeps as many images, '
            'spread over all of it'
        )

    def _clean_captions(self, records: list[ImageRecord]) -> list[tuple[ImageRecord, list[str]]]:
        """Each record with its cleaned captions; empty ones raise or are dropped (``empty_captions``)."""
        images = []
        dropped: list[str] = []
        dropped_images: list[str] = []
        for rec in records:
            captions = []
            for raw, source in zip(rec.captions, rec.sources):
                caption = clean_caption(raw, self.max_words)
                if not caption:
                    if self.empty_captions == 'error':
                        raise AnnotationError(
                            f'{source}: empty caption {raw!r} for image {rec.filename!r} '
                            "(empty_captions='drop' removes such captions)"
                        )
                    dropped.append(source)
                    continue
                captions.append(caption)
            if not captions:  # only reachable with 'drop': every caption of the image was empty
                dropped_images.append(f'{rec.filename} ({rec.sources[0]})')
                continue
            images.append((rec, captions))
        if dropped:
            MMLogger.get_current_instance().warning(
                f'{self.ann_file} [{self.split}]: dropped {len(dropped)} empty captions: '
                + ', '.join(dropped[:5])
                + (' ...' if len(dropped) > 5 else '')
                + (
                    f'; {len(dropped_images)} images had no caption left and were dropped: ' + ', '.join(dropped_images)
                    if dropped_images
                    else ''
                )
            )
        return images


def _positions(indices: int | Sequence[int], total: int, what: str) -> list[int]:
    """mmengine's ``indices`` as positions: ``N`` the first ``N``, ``-N`` the last ``N``, or a sequence.

    Raises:
        ValueError: A position out of range, a repeated one, or an empty selection.
    """
    if isinstance(indices, (bool, str)) or not isinstance(indices, (int, Sequence)):
        raise ValueError(f'indices must be an int or a sequence of ints, got {indices!r}')
    if isinstance(indices, int):
        picked = list(range(min(indices, total))) if indices >= 0 else list(range(max(total + indices, 0), total))
    else:
        picked = [int(i) for i in indices]
        bad = [i for i in picked if not -total <= i < total]
        if bad:
            raise ValueError(f'indices {bad[:5]} are out of range for {total} {what}')
        picked = [i % total for i in picked]
        if len(set(picked)) != len(picked):
            raise ValueError(f'indices repeat a position: each of the {total} {what} can be selected once')
    if not picked:
        raise ValueError(f'indices={indices!r} selects none of the {total} {what}')
    return picked


def _check_list_covers(exclusions: ExclusionList, source: str, split: str, where: str) -> None:
    """Refuse a list whose check says it did not read this source's split: it cannot have found its leaks.

    Raises:
        AnnotationError: The list records the splits it read, and ``(source, split)`` is not one of them.
    """
    checked = exclusions.checked_splits
    if checked is None or (source, split) in checked:
        return
    read = ', '.join(f'{s}/{p}' for s, p in sorted(checked)) or 'nothing'
    raise AnnotationError(
        f'exclusion list {exclusions.path}: the check that wrote it did not read {source}/{split} (it read {read}), '
        f'so it cannot have found the leaks of {where}: give the name the check used for this dataset, or run '
        f'the check with --config {source}=CONFIG'
    )


def _check_exact_keys(argument: str, value: dict, keys: tuple[str, ...]) -> None:
    """Refuse a dict argument that lacks one of ``keys`` or has another, naming both lists.

    Raises:
        ValueError: ``value`` does not have exactly ``keys``.
    """
    missing = set(keys) - set(value)
    unknown = set(value) - set(keys)
    if missing or unknown:
        raise ValueError(
            f'{argument} needs exactly the keys {", ".join(keys)}; missing {sorted(missing)}, unknown {sorted(unknown)}'
        )


def _check_exclude(exclude: dict | None) -> dict | None:
    """Validate the ``exclude`` argument; a clear error names the key at fault."""
    if exclude is None:
        return None
    if not isinstance(exclude, dict):
        raise ValueError(f'exclude must be dict(file=PATH, source=NAME), got {exclude!r}')
    _check_exact_keys('exclude', exclude, ('file', 'source'))
    for key in ('file', 'source'):
        if not isinstance(exclude[key], str) or not exclude[key]:
            raise ValueError(f"exclude['{key}'] must be a non-empty string, got {exclude[key]!r}")
    return dict(exclude)


def _check_holdout(holdout: dict | None, split: str) -> dict | None:
    """Validate the ``holdout`` argument; a clear error names the key at fault."""
    if holdout is None:
        if split == 'holdout':
            raise ValueError("split='holdout' needs holdout=dict(split=..., num_images=..., seed=...)")
        return None
    holdout = dict(holdout)
    _check_exact_keys('holdout', holdout, ('split', 'num_images', 'seed'))
    if holdout['split'] == 'holdout':
        raise ValueError("holdout['split'] names the split the images are carved from, e.g. 'train'")
    if not isinstance(holdout['num_images'], int) or holdout['num_images'] <= 0:
        raise ValueError(f"holdout['num_images'] must be a positive int, got {holdout['num_images']!r}")
    return holdout


def holdout_filenames(records: list[ImageRecord], num_images: int, seed: int) -> set[str]:
    """The file names of ``num_images`` images drawn with ``seed`` from ``records``.

    The draw is over the sorted unique file names, so it depends on the
    split's images only, not on the annotation format or its order.

    Raises:
        ValueError: ``num_images`` leaves no image in the split.
    """
    names = sorted({rec.filename for rec in records})
    if num_images >= len(names):
        raise ValueError(
            f"holdout of {num_images} images would leave none of the split's {len(names)} images for training"
        )
    picked = np.random.default_rng(seed).permutation(len(names))[:num_images]
    return {names[i] for i in picked}


def _check_image(path: str, rec: ImageRecord, full: bool) -> None:
    where = rec.sources[0]
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Image not found: {path} (listed at {where})')
    try:
        if full:
            read_rgb(path)  # the same decoding as training
        else:
            with Image.open(path) as img:
                img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise OSError(f'Unreadable image: {path} (listed at {where}): {err}') from err


def _check_images(paths: list[str], records: list[ImageRecord], full: bool) -> None:
    """Check every image; raise for the first bad one in annotation order."""
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:  # PIL decodes without holding the GIL
        futures = [pool.submit(_check_image, p, r, full) for p, r in zip(paths, records)]
        errors = [f.exception() for f in futures]
    for err in errors:
        if err is not None:
            raise err
