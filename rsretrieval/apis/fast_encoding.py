"""A faster image encoder for inference: the image tower compiled once by inductor, in fp32 or bf16.

:func:`build_image_encoder` wraps a model's ``encode_image`` into an
:class:`ImageEncoder`. The fast path compiles it with ``torch.compile``
(inductor, ``freezing``: the weights become constants, so the relative-position
biases and masks are folded once and bf16 linear layers use prepacked weights),
for one fixed batch size: a smaller batch (the last one of a run) is padded to
it and a larger one split, so that nothing recompiles. The compiled encoder of
a model is kept (while its weights stay unchanged) for the next runs on it, such
as the next shard of an index. When compilation fails the encoder warns once and
runs the model eagerly.

``RSRETRIEVAL_FAST_ENCODING=0`` turns the fast path off whatever the arguments
say (``1`` turns it on); ``fast='auto'`` uses it only in bf16 on CPUs for runs of
at least :data:`AUTO_MIN_IMAGES` images: measured on a 2-core AMD EPYC (Zen 4),
the compiled encoder was faster in bf16 only by enough to pay for its compile
time over thousands of images, and in fp32 slower than the eager model in the
latest run (faster in an earlier one).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
import weakref
from collections.abc import Callable

import torch
from torch import nn

from rsretrieval.utils.env_switches import env_switch
from rsretrieval.utils.precision import cpu_bf16_support

#: Environment variable that forces the fast path off (``0``) or on (``1``).
FAST_ENCODING_ENV = 'RSRETRIEVAL_FAST_ENCODING'

#: ``fast='auto'`` compiles bf16 encoders for runs of at least this many images. Measured on a
#: 2-core AMD EPYC (Zen 4) with paper-size Gswin (benchmarks/encode_speed.py, freed memory kept
#: as ``index`` does), two runs: 66-67 s to compile, then 18.1-20.1 instead of 15.6-17.8 images/s,
#: so the compile time was paid back after about 7,600 and 10,300 images (docs/retrieval.md).
AUTO_MIN_IMAGES = 8000

PRECISIONS = ('fp32', 'bf16', 'auto')

Encoded = torch.Tensor | dict[str, torch.Tensor]


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products in hardware.

    CPUs: :func:`rsretrieval.utils.precision.cpu_bf16_support`, the same decision
    as training and testing make (AVX512-BF16 or AMX reported, and a bf16 matmul
    measured no slower than emulation would allow; ``RSRETRIEVAL_CPU_BF16``
    overrides it).
    """
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    if device.type != 'cpu':
        return False
    return cpu_bf16_support()[0]


def resolve_precision(precision: str, device: torch.device) -> str:
    """``'fp32'`` or ``'bf16'``: ``'auto'`` is bf16 where the hardware has it natively.

    Raises:
        ValueError: Unknown ``precision``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if precision == 'auto':
        return 'bf16' if native_bf16(device) else 'fp32'
    return precision


def _has_cpp_compiler() -> bool:
    # inductor writes C++ for CPU kernels and builds it with the system compiler
    return any(shutil.which(name) for name in (os.environ.get('CXX', 'g++'), 'g++', 'clang++'))


def use_fast_path(
    fast: bool | str,
    device: torch.device,
    num_images: int | None = None,
    compiled_already: bool = False,
    precision: str = 'bf16',
) -> bool:
    """Whether to encode with the compiled encoder.

    Args:
        fast: True, False or ``'auto'``: in bf16 on a CPU with a C++ compiler,
            for at least :data:`AUTO_MIN_IMAGES` images (an unknown count counts
            as many), or for any count once the model is compiled. fp32 and GPUs
            are left eager by ``'auto'`` (fp32 compiled was slower; GPUs unmeasured).
        device: Where the model runs.
        num_images: How many images the run encodes, when known.
        compiled_already: A compiled encoder of this model is at hand.
        precision: ``'fp32'`` or ``'bf16'``, as resolved.

    ``RSRETRIEVAL_FAST_ENCODING=0`` (or ``1``) overrides ``fast``.

    Raises:
        ValueError: ``fast`` or the environment variable has another value.
    """
    forced = env_switch(FAST_ENCODING_ENV)
    if forced is not None:
        return forced
    if fast not in (True, False, 'auto'):
        raise ValueError(f"fast must be True, False or 'auto', got {fast!r}")
    if fast != 'auto':
        return bool(fast)
    enough = compiled_already or num_images is None or num_images >= AUTO_MIN_IMAGES
    return precision == 'bf16' and device.type == 'cpu' and enough and _has_cpp_compiler()


def _slice(out: Encoded, n: int) -> Encoded:
    return {k: v[:n] for k, v in out.items()} if isinstance(out, dict) else out[:n]


def _cat(outs: list[Encoded]) -> Encoded:
    if isinstance(outs[0], dict):
        return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
    return torch.cat(outs)


class ImageEncoder:
    """Preprocessed images ``(B, 3, H, W)`` -> the model's ``encode_image`` output, under no_grad.

    Build it with :func:`build_image_encoder`. With ``compiled`` the first call
    compiles for its batch size (later batches are padded or split to it); a
    failure to compile warns once and leaves the encoder eager. A compiled
    encoder refers to its model weakly: keep the model.

    Args:
        model: The retriever (its ``encode_image`` is what runs), in eval mode.
        precision: ``'fp32'`` or ``'bf16'`` (autocast; parameters stay fp32).
        compiled: Use the fast path.

    Attributes:
        compiled: Whether the fast path is (still) in use.
        batch_size: The batch size compiled for (None before the first call or when eager).
    """

    def __init__(self, model: nn.Module, precision: str = 'fp32', compiled: bool = False) -> None:
        if precision not in ('fp32', 'bf16'):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        # the cache of compiled encoders holds them weakly by model, so they refer to it weakly too
        self._model = weakref.ref(model) if compiled else (lambda: model)
        self.precision, self.compiled = precision, compiled
        self.device = next(model.parameters()).device
        self.batch_size: int | None = None
        self._fn: Callable[[torch.Tensor], Encoded] | None = None
        self._weights = _weights_state(model)

    def reusable(self) -> bool:
        """Still compiled, for the model's weights as they are now (freezing made them constants)."""
        return self.compiled and self._weights == _weights_state(self.model)

    @property
    def model(self) -> nn.Module:
        """The model encoded with."""
        model = self._model()
        if model is None:
            raise RuntimeError('the model of this ImageEncoder has been deleted')
        return model

    def _eager(self, images: torch.Tensor) -> Encoded:
        with self._autocast():
            return self.model.encode_image(images)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == 'bf16':
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _compiled_call(self, images: torch.Tensor) -> Encoded:
        from torch._inductor import config as inductor_config  # loaded only by those who compile

        if self._fn is None:
            # one eager image first fills the model's lazy caches (Gswin's shifted-window masks): traced
            # while still empty, they would fail the guards on the next call and compile it all again
            self._eager(images[:1])
            self._fn = torch.compile(self._eager, dynamic=False)
            self.batch_size = len(images)
        size = self.batch_size
        outs = []
        for start in range(0, len(images), size):
            chunk = images[start : start + size]
            n = len(chunk)
            if n < size:  # repeat the last image: every image is encoded on its own
                chunk = torch.cat([chunk, chunk[-1:].expand(size - n, *chunk.shape[1:])])
            # freezing folds the weights into the graph (prepacked for oneDNN/MKL), read when the first call
            # compiles; torch.compile's options= does not reach it, and a global setting would leak
            with inductor_config.patch(freezing=True):
                outs.append(_slice(self._fn(chunk), n))
        return outs[0] if len(outs) == 1 else _cat(outs)

    def __call__(self, images: torch.Tensor) -> Encoded:
        with torch.no_grad():
            if self.compiled and len(images):
                try:
                    return self._compiled_call(images)
                except Exception as err:  # noqa: BLE001 - any compiler failure: the eager model still works
                    self.compiled, self._fn, self.batch_size = False, None, None
                    warnings.warn(
                        f'fast image encoding is off: compiling the image encoder failed ({type(err).__name__}: '
                        f'{str(err).splitlines()[0] if str(err) else ""}); encoding eagerly',
                        RuntimeWarning,
                        stacklevel=2,
                    )
            return self._eager(images)


def _weights_state(model: nn.Module) -> tuple:
    # in-place updates (an optimizer step, load_state_dict) bump a tensor's version
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


#: Each model's compiled encoders, by precision: compiled once, reused by the next runs on the model.
_compiled: weakref.WeakKeyDictionary[nn.Module, dict[str, ImageEncoder]] = weakref.WeakKeyDictionary()


def build_image_encoder(
    model: nn.Module, precision: str = 'fp32', fast: bool | str = 'auto', num_images: int | None = None
) -> ImageEncoder:
    """An :class:`ImageEncoder` for ``model`` on its device.

    Args:
        model: The retriever, in eval mode.
        precision: ``'fp32'``, ``'bf16'`` (autocast) or ``'auto'`` (bf16 where
            the hardware has it natively: AVX512-BF16/AMX CPUs, recent GPUs).
        fast: Compile the encoder: True, False or ``'auto'`` (see :func:`use_fast_path`).
        num_images: How many images will be encoded, for ``fast='auto'``.
    """
    device = next(model.parameters()).device
    precision = resolve_precision(precision, device)
    cached = _compiled.get(model, {}).get(precision)
    cached = cached if cached is not None and cached.reusable() else None
    if not use_fast_path(fast, device, num_images, cached is not None, precision):
        return ImageEncoder(model, precision)
    if cached is None:
        cached = ImageEncoder(model, precision, compiled=True)
        _compiled.setdefault(model, {})[precision] = cached
    return cached
