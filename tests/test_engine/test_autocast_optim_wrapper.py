import pytest
import torch
from helpers import tiny_runner_cfg
from mmengine.runner import Runner
from torch import nn

from rsretrieval.registry import OPTIM_WRAPPERS


def test_forward_runs_in_bf16_and_params_stay_fp32():
    model = nn.Linear(4, 4)
    wrapper = OPTIM_WRAPPERS.build(
        dict(type='AutocastOptimWrapper', dtype='bfloat16', optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    )
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().pow(2).mean())
    assert model.weight.dtype == torch.float32


def test_rejects_unknown_dtype():
    with pytest.raises(ValueError, match='dtype must be one of'):
        OPTIM_WRAPPERS.build(
            dict(type='AutocastOptimWrapper', dtype='int8', optimizer=torch.optim.SGD(nn.Linear(1, 1).parameters()))
        )


def test_runner_trains_with_autocast(tmp_path, demo_root):
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root))
    cfg['optim_wrapper'] = dict(type='AutocastOptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert torch.isfinite(torch.tensor(runner.message_hub.get_scalar('train/loss').current()))


@pytest.mark.parametrize('native, expected', [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_follows_the_hardware(monkeypatch, native, expected):
    # simulate the report: the test must not depend on this machine's CPU
    monkeypatch.setenv('RSRETRIEVAL_CPU_BF16', '1' if native else '0')
    from rsretrieval.utils.precision import cpu_bf16_support

    cpu_bf16_support.cache_clear()
    try:
        model = nn.Linear(4, 4)
        wrapper = OPTIM_WRAPPERS.build(
            dict(type='AutocastOptimWrapper', optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
        )
        assert wrapper.requested_dtype == 'auto'  # the default
        with wrapper.optim_context(model):
            out = model(torch.randn(2, 4))
        assert out.dtype == expected
    finally:
        cpu_bf16_support.cache_clear()
