"""Which autocast precision pays off on a device, decided from the hardware at run time.

bf16 autocast halves the cost of a matrix product only where the hardware runs
bf16 natively: CUDA GPUs of compute capability 8.0 and later, and CPUs with
AVX-512 BF16 or AMX. Elsewhere PyTorch emulates it: on an AVX2 CPU a 512 x 512
bf16 matmul took 207 ms against 4 ms in fp32. ``'auto'`` therefore picks bf16
only where it is native and fp32 otherwise; an explicit ``'bfloat16'`` is
obeyed, with one warning where it is emulated.

On a CPU, "native" needs both the instruction flags (read through PyTorch's
cpuinfo) and a measured bf16 matmul no slower than 1.5x the fp32 one, so that a
virtual machine that hides AMX, or ``ONEDNN_MAX_CPU_ISA`` / ``ATEN_CPU_CAPABILITY``
limits, count as what they are. ``RSRETRIEVAL_CPU_BF16=0`` (or ``1``) overrides the
decision, for measuring.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass

import torch
from mmengine.logging import MMLogger

#: Accepted precision names; ``None`` means full precision too.
PRECISIONS = ('auto', 'bfloat16', 'float16', 'float32')
#: A bf16 matmul slower than this multiple of the fp32 one is emulated.
EMULATION_RATIO = 1.5


@dataclass(frozen=True)
class PrecisionChoice:
    """An autocast decision.

    Attributes:
        dtype: The autocast dtype, or ``None`` for full precision (fp32).
        reason: Why, in words, for the log.
        emulated: The dtype was requested explicitly but runs emulated (slow).
    """

    dtype: torch.dtype | None
    reason: str
    emulated: bool = False

    @property
    def name(self) -> str:
        """``'bfloat16'``, ``'float16'`` or ``'float32'``."""
        return 'float32' if self.dtype is None else str(self.dtype).removeprefix('torch.')


def _cpu_flags() -> dict[str, bool]:
    """The CPU's bf16 instruction sets as PyTorch's cpuinfo reports them."""
    cpu = torch.cpu
    return {
        'avx512_bf16': bool(getattr(cpu, '_is_avx512_bf16_supported', lambda: False)()),
        'amx_bf16': bool(getattr(cpu, '_is_amx_tile_supported', lambda: False)()),
    }


def _time_matmul(dtype: torch.dtype, size: int = 256, repeats: int = 5) -> float:
    """Fastest of ``repeats`` ``size``-square matmuls in ``dtype`` on the CPU, in seconds
    (the minimum: other load only ever adds time)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g).to(dtype)
    b = torch.randn(size, size, generator=g).to(dtype)
    torch.mm(a, b)  # warm-up: kernel selection, oneDNN primitive creation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return min(times)


def bf16_matmul_ratio() -> float:
    """Time of a bf16 matmul over the fp32 one on this CPU, as PyTorch runs them now."""
    return _time_matmul(torch.bfloat16) / max(_time_matmul(torch.float32), 1e-9)


@functools.lru_cache(maxsize=1)
def cpu_bf16_support() -> tuple[bool, str]:
    """Whether this CPU runs bf16 natively here, and why (cached for the process).

    Returns:
        ``(native, reason)``.
    """
    forced = os.environ.get('RSRETRIEVAL_CPU_BF16')
    if forced in ('0', '1'):
        return forced == '1', f'RSRETRIEVAL_CPU_BF16={forced}'
    flags = _cpu_flags()
    present = [name for name, on in flags.items() if on]
    if not present:
        capability = torch.backends.cpu.get_cpu_capability()
        return False, f'the CPU ({capability}) has neither AVX-512 BF16 nor AMX, so PyTorch would emulate bf16'
    ratio = bf16_matmul_ratio()
    if ratio > EMULATION_RATIO:
        return False, (
            f'the CPU reports {", ".join(present)}, but a bf16 matmul took {ratio:.1f}x the fp32 time here '
            '(the instructions are hidden or disabled: a VM, ONEDNN_MAX_CPU_ISA or ATEN_CPU_CAPABILITY)'
        )
    return True, f'the CPU has {", ".join(present)} (a bf16 matmul took {ratio:.2f}x the fp32 time)'


def _cuda_bf16(device: torch.device) -> tuple[bool, str]:
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    name = torch.cuda.get_device_name(index)
    if major >= 8:
        return True, f'{name} (compute capability {major}.{minor}) runs bf16 natively'
    return False, f'{name} (compute capability {major}.{minor} < 8.0) has no native bf16'


def resolve_precision(requested: str | None, device: torch.device | str) -> PrecisionChoice:
    """The autocast dtype to use for ``requested`` on ``device``.

    Args:
        requested: ``'auto'`` (bf16 where the hardware runs it natively, fp32
            elsewhere), ``'bfloat16'``, ``'float16'`` (obeyed; ``emulated`` is set
            where they are slow), ``'float32'`` or ``None`` (full precision).
        device: Where the model runs.

    Raises:
        ValueError: An unknown name.
    """
    if requested is not None and requested not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS} or None, got {requested!r}')
    device = torch.device(device)
    if requested in (None, 'float32'):
        return PrecisionChoice(None, 'full precision requested')
    if device.type == 'cuda':
        native, why = _cuda_bf16(device)
    elif device.type == 'cpu':
        native, why = cpu_bf16_support()
    else:
        native, why = False, f'no autocast policy for {device.type} devices'
    if requested == 'auto':
        if native:
            return PrecisionChoice(torch.bfloat16, f'auto: {why}')
        return PrecisionChoice(None, f'auto: float32, because {why}')
    if requested == 'float16':
        fp16_native = device.type == 'cuda' or bool(getattr(torch.cpu, '_is_amx_fp16_supported', lambda: False)())
        return PrecisionChoice(torch.float16, 'float16 requested', emulated=not fp16_native)
    return PrecisionChoice(torch.bfloat16, f'bfloat16 requested; {why}', emulated=not native)


_reported: set[tuple] = set()


def log_precision(choice: PrecisionChoice, device: torch.device | str, what: str) -> None:
    """Log the choice once per (what, device, dtype); warn, once, when it is emulated."""
    device = torch.device(device)
    key = (what, str(device), choice.name, choice.emulated)
    if key in _reported:
        return
    _reported.add(key)
    logger = MMLogger.get_current_instance()
    logger.info(f'Precision of {what} on {device.type}: {choice.name} ({choice.reason})')
    if choice.emulated:
        logger.warning(
            f'{choice.name} autocast on this {device.type} is emulated, not native: {what} will run many '
            'times slower than in float32 (a bf16 matmul took about 50x the fp32 time on an AVX2 CPU). '
            "Use 'auto' to let the hardware decide (e.g. --cfg-options optim_wrapper.dtype=auto), or "
            "'float32'."
        )
