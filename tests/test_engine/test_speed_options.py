"""The speed switches: torch.compile of submodules, bf16 encoding in evaluation, phase timings."""

import pytest
import torch
from helpers import tiny_runner_cfg
from mmengine.runner import Runner


def test_compile_hook_compiles_in_place_and_keeps_state_dict_keys(tmp_path, demo_root):
    # no modules named: the encoders this two-tower model has (it has no fusion head)
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root), max_epochs=1)
    cfg['custom_hooks'] = [
        dict(type='SafeCheckpointHook'),
        dict(type='CompileModulesHook', options=dict(backend='eager')),
    ]
    runner = Runner.from_cfg(cfg)
    keys = set(runner.model.state_dict())
    runner.train()
    hook = next(h for h in runner.hooks if type(h).__name__ == 'CompileModulesHook')
    assert hook.modules == ['backbone', 'text_encoder']
    assert runner.model.backbone._compiled_call_impl is not None
    assert runner.model.text_encoder._compiled_call_impl is not None
    assert set(runner.model.state_dict()) == keys  # no _orig_mod prefixes: checkpoints stay portable
    saved = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)['state_dict']
    assert set(saved) == keys


def test_compile_hook_names_a_missing_module(tmp_path, demo_root):
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root), max_epochs=1)
    cfg['custom_hooks'] = [dict(type='CompileModulesHook', modules=['fusion_head'])]
    with pytest.raises(KeyError, match="no submodule 'fusion_head'"):
        Runner.from_cfg(cfg).train()


def test_bf16_encoding_gives_fp32_scores_and_close_metrics(tmp_path, demo_root):
    results = {}
    for autocast in (None, 'bfloat16'):
        cfg = tiny_runner_cfg(str(tmp_path / str(autocast)), str(demo_root))
        cfg['test_cfg'] = dict(type='RetrievalTestLoop', progress_bar=False, autocast=autocast, full_matrix=True)
        runner = Runner.from_cfg(cfg)
        results[autocast] = runner.test()
        timings = runner.test_loop.timings
        assert set(timings) == {'images', 'captions', 'scores', 'metrics', 'total'}
        assert all(v >= 0 for v in timings.values())
        assert timings['total'] >= timings['images'] + timings['captions']
    fp32, bf16 = results[None], results['bfloat16']
    assert abs(fp32['mR'] - bf16['mR']) < 5.0  # bf16 embeddings of a random model: close, not equal


def test_autocast_option_is_checked(tmp_path, demo_root):
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root))
    cfg['test_cfg'] = dict(type='RetrievalTestLoop', autocast='fp8')
    with pytest.raises(ValueError, match='autocast must be None or one of'):
        Runner.from_cfg(cfg).test()
