"""Model cost as the paper's Table VIII defines it: parameters, FLOPs, evaluation and inference time."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

# What retrieval runs: the fusion encoder, its heads, the momentum encoders and the
# queues are training-time only (momentum weights are buffers, not parameters).
INFERENCE_MODULES = ('backbone', 'text_encoder', 'image_proj', 'text_proj')


def count_parameters(model: nn.Module) -> dict:
    """Parameters per top-level module, in total and on the inference path.

    A shared tensor (the MLM decoder tied to the word embeddings) counts once,
    under its first owner.

    Returns:
        ``dict(per_module={name: n}, total=n, inference=n)``.
    """
    per_module: dict[str, int] = {}
    for name, param in model.named_parameters():
        top = name.split('.')[0]
        per_module[top] = per_module.get(top, 0) + param.numel()
    total = sum(per_module.values())
    inference = sum(per_module.get(name, 0) for name in INFERENCE_MODULES)
    return dict(per_module=per_module, total=total, inference=inference)


def _concat(parts: list) -> torch.Tensor | dict[str, torch.Tensor]:
    if isinstance(parts[0], dict):  # models that score with a match head return token dicts
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    return torch.cat(parts)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _dummy_captions(n: int, words: int = 12) -> list[str]:
    vocab = ['many', 'green', 'trees', 'are', 'around', 'a', 'white', 'building', 'near', 'the', 'river', 'road']
    return [' '.join(vocab[(i + j) % len(vocab)] for j in range(words)) for i in range(n)]


def flops_per_item(model: nn.Module, image_size: tuple[int, int]) -> dict[str, int]:
    """FLOPs (multiply-adds counted once, fvcore's convention) of embedding one image and one caption.

    Counted with mmengine's ``FlopAnalyzer`` on the image path (backbone +
    projection) and the text path (text encoder + pooling + projection) of a
    12-word caption padded to the tokenizer's maximum length.
    """
    from mmengine.analysis import FlopAnalyzer

    device = next(model.parameters()).device

    class _Path(nn.Module):  # FlopAnalyzer traces a module: wrap one path of the model
        def __init__(self, path) -> None:
            super().__init__()
            self.model, self.path = model, path

        def forward(self, *inputs):
            return self.path(*inputs)[1]  # the embedding

    images = torch.zeros(1, 3, *image_size, device=device)
    batch = model.text_encoder.tokenize(_dummy_captions(1), device=device, pad_to_max_length=True)
    out = {}
    for name, module, inputs in (
        ('image', _Path(model.image_tokens), (images,)),
        ('text', _Path(model.text_tokens), (batch['input_ids'], batch['attention_mask'])),
    ):
        analyzer = FlopAnalyzer(module.eval(), inputs)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        out[name] = int(analyzer.total())
    return out


def _median_time(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _encode_in_batches(encode: Callable, batch: torch.Tensor | list, total: int) -> list:
    """``encode`` over ``total`` items in batches of ``len(batch)``, each cut from ``batch``
    (one batch of inputs stands in for every batch: the cost does not depend on the values)."""
    size = max(1, len(batch))
    return [encode(batch[: min(size, total - start)]) for start in range(0, total, size)]


@torch.no_grad()
def time_evaluation(
    model: nn.Module,
    num_images: int,
    num_captions: int,
    image_size: tuple[int, int],
    image_batch: int = 64,
    text_batch: int = 256,
) -> dict[str, float]:
    """Seconds to score every (image, caption) pair of a test set of this size.

    Embeds ``num_images`` images (already decoded, in memory) and
    ``num_captions`` captions in batches and computes the full similarity
    matrix: the paper's "evaluation time" without file decoding.

    Returns:
        ``dict(images=s, captions=s, similarity=s, total=s)``.
    """
    device = next(model.parameters()).device
    images = torch.rand(min(image_batch, num_images), 3, *image_size, device=device)
    captions = _dummy_captions(min(text_batch, num_captions))
    _sync(device)
    t0 = time.perf_counter()
    img = _encode_in_batches(model.encode_image, images, num_images)
    _sync(device)
    t1 = time.perf_counter()
    txt = _encode_in_batches(model.encode_text, captions, num_captions)
    _sync(device)
    t2 = time.perf_counter()
    sims = model.similarity(_concat(img), _concat(txt))
    _sync(device)
    t3 = time.perf_counter()
    assert sims.shape == (num_images, num_captions)
    return dict(images=t1 - t0, captions=t2 - t1, similarity=t3 - t2, total=t3 - t0)


@torch.no_grad()
def time_pair(model: nn.Module, image_size: tuple[int, int], repeats: int = 20) -> float:
    """Median seconds of one cross-modal similarity from scratch: embed one image and
    one caption (batch 1) and take their cosine: the paper's "inference time"."""
    device = next(model.parameters()).device
    image = torch.rand(1, 3, *image_size, device=device)
    caption = _dummy_captions(1)

    def pair():
        return model.similarity(model.encode_image(image), model.encode_text(caption))

    return _median_time(pair, device, repeats)
