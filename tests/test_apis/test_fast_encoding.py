"""The fast image encoder: compiled embeddings equal eager ones, the last smaller batch is padded
(no recompile), a failed compile falls back to eager with one warning, the environment variable
forces it off, and 'auto' picks the path and precision from the hardware and the run's size."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
import torch._dynamo.testing
import torch.nn.functional as F
from torch import nn

from rsretrieval.apis import fast_encoding
from rsretrieval.apis.fast_encoding import (
    AUTO_MIN_IMAGES,
    FAST_ENCODING_ENV,
    build_image_encoder,
    resolve_precision,
    use_fast_path,
)
from rsretrieval.models.backbones.gswin import Gswin

CPU = torch.device('cpu')


class TinyRetriever(nn.Module):
    """Just what the encoder uses of a retriever: ``encode_image`` on a tiny Gswin."""

    def __init__(self, as_dict: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = Gswin(img_size=32, embed_dim=8, depths=(1, 1), num_heads=(1, 2), window_size=4)
        self.proj = nn.Linear(16, 8)
        self.as_dict = as_dict

    def encode_image(self, images: torch.Tensor):
        tokens = self.backbone(images)
        emb = F.normalize(self.proj(tokens[:, 0]), dim=-1)
        return dict(emb=emb, tokens=tokens) if self.as_dict else emb


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(FAST_ENCODING_ENV, raising=False)


@pytest.fixture
def traced_compile(monkeypatch):
    """Replace torch.compile by the identity; returns the batch sizes the 'compiled' function saw."""
    seen: list[int] = []

    def fake_compile(fn, **kwargs):
        def compiled(images):
            seen.append(len(images))
            return fn(images)

        return compiled

    monkeypatch.setattr(torch, 'compile', fake_compile)
    return seen


def _images(n: int) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(n))


@pytest.mark.skipif(
    os.environ.get('RSRETRIEVAL_TEST_COMPILE') != '1',
    reason='inductor takes minutes to compile even a tiny Gswin on 2 cores: set RSRETRIEVAL_TEST_COMPILE=1',
)
def test_inductor_compiled_tiny_gswin_matches_eager_with_a_smaller_last_batch():
    model = TinyRetriever().eval()
    for precision in ('fp32', 'bf16'):
        fast = build_image_encoder(model, precision, fast=True)
        eager = build_image_encoder(model, precision, fast=False)
        for images in (_images(4), _images(3)):
            cos = F.cosine_similarity(fast(images).float(), eager(images).float())
            assert cos.min() >= 0.999
        assert fast.compiled and fast.batch_size == 4


def test_traced_tiny_gswin_matches_eager_without_recompiling_for_the_last_batch(monkeypatch):
    # dynamo traces the real model (graph, guards, padding) with a backend that needs no C++ compiler
    real_compile = torch.compile
    monkeypatch.setattr(torch, 'compile', lambda fn, **kwargs: real_compile(fn, dynamic=False, backend=counter))
    counter = torch._dynamo.testing.CompileCounterWithBackend('aot_eager')
    model = TinyRetriever().eval()
    fast = build_image_encoder(model, 'fp32', fast=True)
    eager = build_image_encoder(model, 'fp32', fast=False)
    for images in (_images(4), _images(3), _images(4)):
        torch.testing.assert_close(fast(images), eager(images), rtol=1e-5, atol=1e-6)
    assert fast.compiled and counter.frame_count == 1


def test_last_batch_padded_and_large_batch_split_to_the_compiled_size(traced_compile):
    model = TinyRetriever(as_dict=True).eval()
    encoder = build_image_encoder(model, 'fp32', fast=True)
    eager = build_image_encoder(model, 'fp32', fast=False)
    for n in (4, 3, 9):
        out = encoder(_images(n))
        ref = eager(_images(n))
        assert out['emb'].shape == (n, 8) and out['tokens'].shape[0] == n
        torch.testing.assert_close(out['emb'], ref['emb'], rtol=1e-5, atol=1e-6)
    assert traced_compile == [4, 4, 4, 4, 4]  # 4; 3 padded; 9 = 4 + 4 + 1 padded


def test_failed_compile_warns_once_and_encodes_eagerly(monkeypatch):
    def broken_compile(fn, **kwargs):
        def compiled(images):
            raise RuntimeError('no C++ compiler\nmore detail')

        return compiled

    monkeypatch.setattr(torch, 'compile', broken_compile)
    model = TinyRetriever().eval()
    encoder = build_image_encoder(model, 'fp32', fast=True)
    with pytest.warns(RuntimeWarning, match=r'compiling the image encoder failed \(RuntimeError: no C\+\+ compiler\)'):
        out = encoder(_images(2))
    assert not encoder.compiled
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        again = encoder(_images(2))
    torch.testing.assert_close(out, again)
    torch.testing.assert_close(out, build_image_encoder(model, 'fp32', fast=False)(_images(2)))


def test_environment_variable_forces_the_fast_path_off_or_on(monkeypatch, traced_compile):
    monkeypatch.setenv(FAST_ENCODING_ENV, '0')
    assert not use_fast_path(True, CPU, 10**6)
    encoder = build_image_encoder(TinyRetriever().eval(), 'fp32', fast=True)
    encoder(_images(2))
    assert not encoder.compiled and traced_compile == []
    monkeypatch.setenv(FAST_ENCODING_ENV, '1')
    assert use_fast_path(False, torch.device('cuda'), 1)
    monkeypatch.setenv(FAST_ENCODING_ENV, 'yes')
    with pytest.raises(ValueError, match='must be 0 or 1'):
        use_fast_path('auto', CPU)


def test_auto_fast_path_only_in_bf16_on_cpus_with_a_compiler_for_long_runs(monkeypatch):
    monkeypatch.setattr(fast_encoding, '_has_cpp_compiler', lambda: True)
    assert use_fast_path('auto', CPU, AUTO_MIN_IMAGES)
    assert use_fast_path('auto', CPU, None)  # an unknown count counts as many
    assert not use_fast_path('auto', CPU, AUTO_MIN_IMAGES - 1)
    assert use_fast_path('auto', CPU, 1, compiled_already=True)  # the compile time is paid already
    assert not use_fast_path('auto', CPU, 10**6, precision='fp32')  # measured slower compiled
    assert not use_fast_path('auto', torch.device('cuda'), 10**6)
    assert use_fast_path(True, CPU, 1, precision='fp32') and not use_fast_path(False, CPU, 10**6)
    monkeypatch.setattr(fast_encoding, '_has_cpp_compiler', lambda: False)
    assert not use_fast_path('auto', CPU, 10**6)
    with pytest.raises(ValueError, match="fast must be True, False or 'auto'"):
        use_fast_path('yes', CPU)


def test_compiled_encoder_reused_for_the_next_run_until_the_weights_change(traced_compile):
    model = TinyRetriever().eval()
    first = build_image_encoder(model, 'bf16', fast=True)
    assert build_image_encoder(model, 'bf16', fast='auto', num_images=1) is first
    assert not build_image_encoder(model, 'fp32', fast='auto', num_images=1).compiled
    with torch.no_grad():
        model.proj.bias.add_(1.0)
    assert build_image_encoder(model, 'bf16', fast=True) is not first


def test_auto_precision_is_bf16_only_where_the_cpu_has_it_natively(monkeypatch):
    # the CPU's answer is rsretrieval.utils.precision's (flags and a measured matmul: tests/test_utils)
    monkeypatch.setattr(fast_encoding, 'cpu_bf16_support', lambda: (True, 'native'))
    assert resolve_precision('auto', CPU) == 'bf16'
    monkeypatch.setattr(fast_encoding, 'cpu_bf16_support', lambda: (False, 'emulated'))
    assert resolve_precision('auto', CPU) == 'fp32'
    assert resolve_precision('bf16', CPU) == 'bf16' and resolve_precision('fp32', CPU) == 'fp32'
    with pytest.raises(ValueError, match='precision must be one of'):
        resolve_precision('fp16', CPU)


def test_auto_precision_agrees_with_the_training_decision_on_this_cpu():
    from rsretrieval.utils.precision import resolve_precision as training_precision

    expected = 'bf16' if training_precision('auto', CPU).dtype == torch.bfloat16 else 'fp32'
    assert resolve_precision('auto', CPU) == expected
