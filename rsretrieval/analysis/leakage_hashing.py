"""Perceptual hashes of image files for the leakage check: ImageHash's phash over shifted windows.

A copy that was cropped by a few per cent shows the same scene shifted and
rescaled, which changes a hash of the whole image by about as much as a
different scene does (measured in docs/leakage.md). So every image is hashed
whole and over windows that cut a few per cent off its sides at several
offsets: a cropped copy's whole-image hash then meets a window of the original
that shows nearly the same part of the scene. Two images are as close as the
closest whole-image hash of one to any hash of the other
(:mod:`rsretrieval.analysis.leakage_pairs`).

Images are decoded in grey at a reduced size: JPEG with ``Image.draft`` (the
decoder's own downscaling, several times faster than a full decode), other
formats reduced by a whole factor after decoding, both to about twice the
hash's input side, so that a JPEG and a PNG of the same pixels hash alike.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np
from PIL import Image

from rsretrieval.utils.loader_workers import usable_cpus
from rsretrieval.utils.progress import Progress

from .leakage_inputs import LeakCheckError

#: A window as fractions of the image: (left, top, right, bottom).
Box = tuple[float, float, float, float]

#: Files per hashing task: big enough that a task outweighs its dispatch, small enough for even shares.
CHUNK = 64
#: What PIL raises for a file it cannot decode (a truncated or foreign file, a decompression bomb).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def shifted_windows(side: float = 0.95, steps: int = 5) -> tuple[Box, ...]:
    """The whole image, then windows of ``side`` of the width and the height on a ``steps`` x ``steps``
    grid of offsets, then strips that cut ``1 - side`` off one axis only, at three offsets per axis.

    With ``steps`` offsets from 0 to ``1 - side``, a crop of ``1 - side`` at any offset is
    at most ``(1 - side) / (2 * (steps - 1))`` of the side from a window.
    """
    margin = 1.0 - side
    offsets = [margin * i / (steps - 1) for i in range(steps)] if steps > 1 else [margin / 2]
    grid = [(x, y, x + side, y + side) for y in offsets for x in offsets]
    thirds = (0.0, margin / 2, margin)
    rows = [(0.0, y, 1.0, y + side) for y in thirds]
    columns = [(x, 0.0, x + side, 1.0) for x in thirds]
    return ((0.0, 0.0, 1.0, 1.0), *grid, *rows, *columns)


@dataclass(frozen=True)
class WindowedPHash:
    """ImageHash's ``phash`` of an image and of shifted windows of it.

    Attributes:
        size: phash's ``hash_size``: the hash keeps ``size`` x ``size`` DCT coefficients, one bit each.
        windows: The hashed windows; the first is the whole image.
        draft: Decode JPEG files at a reduced size (``Image.draft``).
    """

    size: int = 16
    windows: tuple[Box, ...] = field(default_factory=shifted_windows)
    draft: bool = True

    @property
    def bits(self) -> int:
        """Bits of one hash."""
        return self.size * self.size

    @property
    def input_side(self) -> int:
        """The side phash resizes an image to before its DCT (``4 * size``, phash's ``highfreq_factor``)."""
        return 4 * self.size

    def describe(self) -> dict:
        """The method as the outputs record it."""
        import imagehash

        return dict(
            hash='phash',
            library=f'ImageHash {imagehash.__version__}',
            hash_size=self.size,
            bits=self.bits,
            windows=len(self.windows),
            window_side=min(right - left for left, _, right, _ in self.windows),
            jpeg_draft=self.draft,
        )

    def load(self, path: str) -> Image.Image:
        """The image in grey at about twice phash's input side (never enlarged).

        Raises:
            LeakCheckError: The file cannot be decoded; the message names it.
        """
        work = 2 * self.input_side
        try:
            with Image.open(path) as img:
                if self.draft and img.format == 'JPEG':
                    img.draft('L', (work, work))
                grey = _to_grey(img)
        except DECODE_ERRORS as err:
            raise LeakCheckError(f'unreadable image {path}: {err}') from err
        factor = min(grey.size) // work
        return grey.reduce(factor) if factor >= 2 else grey

    def hash_image(self, image: Image.Image) -> np.ndarray:
        """The packed hashes of every window of a grey image: ``[windows, bits // 8]`` uint8."""
        import imagehash

        side = self.input_side
        width, height = image.size
        rows = []
        for left, top, right, bottom in self.windows:
            box = (left * width, top * height, right * width, bottom * height)
            # resized here, so that phash's own (Lanczos) resize is the identity: bilinear separates copies
            # from distinct images as well on UCM-Captions and takes 60 % of the time (docs/leakage.md)
            window = image.resize((side, side), Image.Resampling.BILINEAR, box=box)
            rows.append(np.packbits(imagehash.phash(window, self.size).hash.reshape(-1)))
        return np.stack(rows)

    def hash_file(self, path: str) -> np.ndarray:
        """:meth:`hash_image` of a file.

        Raises:
            LeakCheckError: The file cannot be decoded; the message names it.
        """
        image = self.load(path)
        if min(image.size) < 2:
            raise LeakCheckError(
                f'unreadable image {path}: {image.size[0]}x{image.size[1]} pixels is too small to hash'
            )
        return self.hash_image(image)


def _to_grey(img: Image.Image) -> Image.Image:
    """8-bit grey; 16- and 32-bit integer images scaled from their type's range, float ones from [0, 1]
    (as the training loader does, :func:`rsretrieval.datasets.transforms.loading.read_rgb`)."""
    if img.mode.startswith('I;16'):
        scaled = np.asarray(img, dtype=np.float32) / 257.0
    elif img.mode == 'I':
        values = np.asarray(img, dtype=np.float64)
        scaled = values / (257.0 if values.max(initial=0) <= 65535 else 16843009.0)
    elif img.mode == 'F':
        scaled = np.asarray(img, dtype=np.float32) * 255.0
    else:
        return img.convert('L')
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), 'L')


def hashing_processes(images: int, workers: int | None = None, chunk: int = CHUNK) -> int:
    """How many processes hash ``images`` files: ``workers`` (default: the CPUs this process may
    use), no more than there are tasks of ``chunk`` files, at least one."""
    return max(1, min(workers or usable_cpus(), -(-images // chunk)))


def _hash_chunk(method: WindowedPHash, paths: Sequence[str]) -> np.ndarray:
    """Hashes of ``paths``: ``[len(paths), windows, bits // 8]``."""
    return np.stack([method.hash_file(path) for path in paths])


def hash_files(
    paths: Sequence[str],
    method: WindowedPHash,
    workers: int | None = None,
    progress_stream: TextIO | None = None,
    chunk: int = CHUNK,
) -> np.ndarray:
    """Hash every file, in processes.

    Args:
        paths: Image files.
        method: The hash.
        workers: Processes at most (default: the CPUs this process may use); 1 hashes here
            (:func:`hashing_processes`).
        progress_stream: Where progress goes: a bar on a terminal, a line per tenth
            elsewhere; None: no progress.
        chunk: Files per task.

    Returns:
        ``[len(paths), windows, bits // 8]`` uint8.

    Raises:
        LeakCheckError: A file that cannot be decoded (one line naming it).
    """
    codes = np.empty((len(paths), len(method.windows), method.bits // 8), np.uint8)
    starts = range(0, len(paths), chunk)
    workers = hashing_processes(len(paths), workers, chunk)
    progress = Progress(
        len(paths), 'hashed', bar=True, unit='images', stream=progress_stream, enabled=progress_stream is not None
    )
    try:
        if workers <= 1:
            for start in starts:
                codes[start : start + chunk] = _hash_chunk(method, paths[start : start + chunk])
                progress.update(len(paths[start : start + chunk]))
        else:
            _hash_in_processes(paths, method, workers, chunk, codes, progress)
    finally:
        progress.close()
    return codes


def _hash_in_processes(
    paths: Sequence[str], method: WindowedPHash, workers: int, chunk: int, codes: np.ndarray, progress: Progress
) -> None:
    """Fill ``codes`` with ``workers`` processes; the first error stops them all."""
    # fork: a worker starts at once, without importing torch again through rsretrieval.analysis
    context = multiprocessing.get_context('fork' if 'fork' in multiprocessing.get_all_start_methods() else None)
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: dict[Future, int] = {
            pool.submit(_hash_chunk, method, paths[start : start + chunk]): start
            for start in range(0, len(paths), chunk)
        }
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                start = pending.pop(future)
                if future.exception() is not None:
                    pool.shutdown(cancel_futures=True)
                    raise future.exception()
                block = future.result()
                codes[start : start + len(block)] = block
                progress.update(len(block))
