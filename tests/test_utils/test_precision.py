"""Precision by hardware: bf16 only where it is native (the reports are simulated)."""

import pytest
import torch
from mmengine.logging import MMLogger

from rsretrieval.utils import precision
from rsretrieval.utils.precision import cpu_bf16_support, log_precision, resolve_precision


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.delenv('RSRETRIEVAL_CPU_BF16', raising=False)
    cpu_bf16_support.cache_clear()
    yield
    cpu_bf16_support.cache_clear()


def _cpu(monkeypatch, avx512_bf16=False, amx=False, ratio=1.0):
    monkeypatch.setattr(precision, '_cpu_flags', lambda: {'avx512_bf16': avx512_bf16, 'amx_bf16': amx})
    monkeypatch.setattr(precision, 'bf16_matmul_ratio', lambda: ratio)


def test_auto_is_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    _cpu(monkeypatch)  # an AVX2 CPU: no AVX-512 BF16, no AMX
    choice = resolve_precision('auto', 'cpu')
    assert choice.dtype is None and choice.name == 'float32'
    assert 'neither AVX-512 BF16 nor AMX' in choice.reason


@pytest.mark.parametrize('flags', [dict(avx512_bf16=True), dict(amx=True), dict(avx512_bf16=True, amx=True)])
def test_auto_is_bf16_where_it_is_native(monkeypatch, flags):
    _cpu(monkeypatch, ratio=0.4, **flags)
    choice = resolve_precision('auto', 'cpu')
    assert choice.dtype == torch.bfloat16 and not choice.emulated


def test_flags_without_the_speed_count_as_emulated(monkeypatch):
    # a VM that reports AMX but does not enable it, or ONEDNN_MAX_CPU_ISA=AVX2
    _cpu(monkeypatch, amx=True, ratio=40.0)
    choice = resolve_precision('auto', 'cpu')
    assert choice.dtype is None and 'hidden or disabled' in choice.reason


def test_explicit_bf16_runs_but_is_flagged_and_warned_once(monkeypatch):
    _cpu(monkeypatch)
    choice = resolve_precision('bfloat16', 'cpu')
    assert choice.dtype == torch.bfloat16 and choice.emulated
    logger = MMLogger.get_current_instance()
    messages = []
    monkeypatch.setattr(logger, 'warning', messages.append)
    monkeypatch.setattr(logger, 'info', lambda msg: None)
    log_precision(choice, 'cpu', 'a test run')
    log_precision(choice, 'cpu', 'a test run')
    assert len(messages) == 1 and 'many times slower' in messages[0] and "'auto'" in messages[0]


def test_environment_override(monkeypatch):
    _cpu(monkeypatch, amx=True, ratio=0.4)
    monkeypatch.setenv('RSRETRIEVAL_CPU_BF16', '0')
    assert resolve_precision('auto', 'cpu').dtype is None


def test_full_precision_and_unknown_names(monkeypatch):
    _cpu(monkeypatch, amx=True, ratio=0.4)
    assert resolve_precision(None, 'cpu').dtype is None
    assert resolve_precision('float32', 'cpu').dtype is None
    with pytest.raises(ValueError, match='precision must be one of'):
        resolve_precision('fp8', 'cpu')


def test_cuda_policy_follows_compute_capability(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 0)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda i: 'a GPU')
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda i: (9, 0))
    assert resolve_precision('auto', 'cuda').dtype == torch.bfloat16
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda i: (7, 5))
    choice = resolve_precision('auto', 'cuda')
    assert choice.dtype is None and 'no native bf16' in choice.reason


def test_the_real_probe_answers():
    native, reason = cpu_bf16_support()
    assert isinstance(native, bool) and reason
