"""Momentum distillation ramps up over the first epoch (ALBEF), and only where it is on."""

from types import SimpleNamespace

import pytest
import torch
from helpers import tiny_cmpagl
from torch import nn

from rsretrieval.engine.hooks import DistillationWarmupHook
from rsretrieval.registry import MODELS


def _runner(model, iteration, iters_per_epoch=4):
    return SimpleNamespace(model=model, iter=iteration, train_dataloader=[None] * iters_per_epoch)


class _Distilling(nn.Module):
    """A module that distils, inside a model of no particular type."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.distill_alpha, self.distill_ramp = alpha, 1.0


def test_ramp_is_linear_over_the_first_epoch_then_full():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(_Distilling(0.4)))
    hook = DistillationWarmupHook(warmup_epochs=1)
    hook.before_train(_runner(model, 0))
    ramps = []
    for it in range(6):
        hook.before_train_iter(_runner(model, it), it % 4)
        ramps.append(model[1][0].distill_ramp)
    assert ramps == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_models_without_distillation_are_left_alone():
    off = nn.Sequential(_Distilling(0.0))
    DistillationWarmupHook().before_train_iter(_runner(off, 0), 0)
    assert off[0].distill_ramp == 1.0
    DistillationWarmupHook().before_train_iter(_runner(nn.Linear(2, 2), 0), 0)  # nothing to ramp: no error


def test_the_itc_loss_sees_the_ramped_weight(monkeypatch):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cmpagl(distill_alpha=0.4, triplet=None, itm=None, mlm=None, fusion_head=None))
    seen = []
    itc = model.pre_alignment.itc_loss
    forward = itc.forward
    monkeypatch.setattr(itc, 'forward', lambda *a, **k: seen.append(k['alpha']) or forward(*a, **k))
    DistillationWarmupHook().before_train_iter(_runner(model, 0, iters_per_epoch=8), 0)
    g = torch.Generator().manual_seed(0)
    batch = dict(
        inputs=list(torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8, generator=g)),
        data_samples=dict(caption=['a red roof', 'a green field'], image_id=[0, 1]),
    )
    data = model.data_preprocessor(batch, True)
    model.loss(data['inputs'], data['data_samples'])
    assert seen == [pytest.approx(0.4 / 8)]


def test_negative_warmup_is_refused():
    with pytest.raises(ValueError, match='warmup_epochs'):
        DistillationWarmupHook(warmup_epochs=-1)
