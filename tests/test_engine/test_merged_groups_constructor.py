import torch
from helpers import captured_log, tiny_cmpagl
from mmengine.optim import build_optim_wrapper

from rsretrieval.registry import MODELS

PARAMWISE = dict(custom_keys={'text_encoder': dict(lr_mult=0.1), 'norm': dict(decay_mult=0.0)}, bypass_duplicate=True)


def _options_by_parameter(optimizer) -> dict[int, dict]:
    out = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            assert id(p) not in out, 'a parameter is in two groups'
            out[id(p)] = {k: v for k, v in group.items() if k != 'params'}
    return out


def test_merged_groups_keep_every_parameter_option():
    torch.manual_seed(0)
    model = MODELS.build(tiny_cmpagl())
    cfg = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.02), paramwise_cfg=PARAMWISE)
    default = build_optim_wrapper(model, cfg).optimizer
    merged = build_optim_wrapper(model, dict(cfg, constructor='MergedGroupsOptimWrapperConstructor')).optimizer
    assert len(default.param_groups) > 50  # mmengine: one group per parameter
    distinct = {tuple(sorted((k, str(v)) for k, v in o.items())) for o in _options_by_parameter(default).values()}
    assert len(merged.param_groups) == len(distinct) == 3  # text (first matching key), norms, the rest
    assert _options_by_parameter(default) == _options_by_parameter(merged)
    trainable = {id(p) for p in model.parameters()}
    assert set(_options_by_parameter(merged)) == trainable  # each parameter once (tied weights too)
    lrs = sorted({g['lr'] for g in merged.param_groups})
    assert lrs == [1e-4, 1e-3]


def test_per_parameter_notes_become_one_line():
    """mmengine logs a line per parameter option, frozen and tied parameter; the constructor says it once."""
    import logging

    from mmengine.logging import MMLogger

    torch.manual_seed(0)
    model = MODELS.build(tiny_cmpagl())
    frozen = next(name for name, _ in model.named_parameters() if name.startswith('backbone.'))
    model.get_parameter(frozen).requires_grad_(False)
    MMLogger.get_instance('merged_groups_notes', log_level='INFO')  # the current logger, at INFO
    cfg = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.02),
        paramwise_cfg=PARAMWISE,
        constructor='MergedGroupsOptimWrapperConstructor',
    )
    with captured_log(logging.INFO) as plain:
        build_optim_wrapper(model, cfg)
    with captured_log(logging.INFO) as records:
        build_optim_wrapper(model, dict(cfg, constructor='DefaultOptimWrapperConstructor'))
    assert len(records) > 50  # mmengine alone: a line per parameter
    per_parameter = ('paramwise_options -- ', ' is skipped since', ' is duplicate.')
    assert not [m for m in plain if any(p in m for p in per_parameter)]
    summary = [m for m in plain if m.startswith('optimizer: ')]
    assert len(summary) == 1, plain
    assert '3 group(s)' in summary[0]
    assert f'not optimised (requires_grad=False): {frozen}' in summary[0]
    assert 'per-parameter options of paramwise_cfg applied' in summary[0]
