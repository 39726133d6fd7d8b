"""Bad input to the tools ends in one line that names it, and early."""

import subprocess
import sys
import tempfile
import time

import pytest
import torch
from conftest import REPO


def _fail(*args, timeout=300):
    with tempfile.TemporaryDirectory() as work_dir:
        if args[0] in ('tools/train.py', 'tools/test.py'):  # a Runner must not write into the repository
            args = (*args[:2], '--work-dir', work_dir, *args[2:])
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
        elapsed = time.perf_counter() - start
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if 'error:' in line]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert '\x1b[' not in lines[0]
    return lines[0], elapsed


@pytest.mark.parametrize(
    'args, message',
    [
        (['tools/test.py', 'configs/nope.py', 'x.pth'], 'config not found: configs/nope.py'),
        (['tools/test.py', 'configs/cmpagl_demo.py', 'missing.pth'], 'checkpoint not found: missing.pth'),
        (['tools/test.py', 'configs', 'x.pth'], 'config is a folder, not a file: configs'),
        (['tools/train.py', 'configs/nope.py'], 'config not found: configs/nope.py'),
        (['tools/train.py', 'configs/cmpagl_demo.py', '--resume', 'gone.pth'], 'checkpoint not found: gone.pth'),
        (['tools/misc/run_seeds.py', 'configs/nope.py'], 'config not found: configs/nope.py'),
        (['tools/analysis_tools/count_params.py', 'configs/nope.py'], 'config not found: configs/nope.py'),
        (
            ['tools/analysis_tools/complexity.py', 'configs/cmpagl_demo.py', '--checkpoint', 'no.pth'],
            'checkpoint not found: no.pth',
        ),
    ],
)
def test_missing_inputs_are_reported_before_the_slow_imports(args, message):
    line, elapsed = _fail(*args)
    assert message in line
    assert elapsed < 5.0  # before torch and the models load (~5-10 s)


def test_rerank_names_are_the_registered_rerankers_in_any_case():
    from rsretrieval.cli import reranker_type

    assert [reranker_type(name) for name in ('smr', 'SMR', 'Mr', 'none', 'ITM', 'itmrerank')] == [
        'SMR',
        'SMR',
        'MR',
        'NoRerank',
        'ITMRerank',
        'ITMRerank',
    ]


def test_an_unknown_reranker_lists_the_registered_ones(tmp_path):
    ckpt = tmp_path / 'x.pth'
    torch.save({'state_dict': {}}, ckpt)
    line, _ = _fail('tools/test.py', 'configs/cmpagl_demo.py', str(ckpt), '--rerank', 'smrr')
    assert "unknown reranker 'smrr'" in line
    assert all(name in line for name in ('ITMRerank', 'MR', 'NoRerank', 'SMR'))


def test_a_checkpoint_cut_short_is_called_incomplete(tmp_path):
    ckpt = tmp_path / 'torn.pth'
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, ckpt)
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    line, _ = _fail('tools/test.py', 'configs/cmpagl_demo.py', str(ckpt))
    assert 'checkpoint is incomplete' in line and str(ckpt) in line


def test_a_config_with_a_syntax_error_is_one_line(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text("model = dict(type='CMPAGL'\n")
    ckpt = tmp_path / 'x.pth'
    torch.save({'state_dict': {}}, ckpt)
    line, _ = _fail('tools/test.py', str(bad), str(ckpt))
    assert f'config {bad} cannot be read' in line


def test_unknown_cfg_options_keys_are_refused_with_a_suggestion(tiny_demo_checkpoint):
    ckpt, cli = tiny_demo_checkpoint
    line, _ = _fail('tools/test.py', 'configs/cmpagl_demo.py', str(ckpt), *cli, 'data_rot=/nonexistent')
    assert "no top-level key 'data_rot'; did you mean 'data_root'?" in line
    line, _ = _fail('tools/test.py', 'configs/cmpagl_demo.py', str(ckpt), *cli, 'model.no_such_key=3')
    assert "CMPAGL takes no argument 'no_such_key'" in line
    line, _ = _fail('tools/test.py', 'configs/cmpagl_demo.py', str(ckpt), *cli, 'model.backbone.windw_size=4')
    assert "Gswin takes no argument 'windw_size'; did you mean 'window_size'?" in line


def test_a_checkpoint_of_another_model_is_summarised(tmp_path, tiny_demo_checkpoint):
    ckpt, cli = tiny_demo_checkpoint
    state = torch.load(ckpt, weights_only=True)['state_dict']
    other = {k.replace('backbone.', 'backbone.model.', 1): v for k, v in state.items()}  # another backbone's keys
    meta_cfg = "model = dict(\n    backbone=dict(type='ConvNeXt'),\n    type='CMPAGL')\n"
    foreign = tmp_path / 'foreign.pth'
    torch.save({'state_dict': other, 'meta': {'cfg': meta_cfg}}, foreign)
    line, _ = _fail('tools/test.py', 'configs/cmpagl_demo.py', str(foreign), *cli)
    assert 'does not fit the config' in line
    assert 'holds CMPAGL (backbone ConvNeXt)' in line and 'builds CMPAGL (backbone Gswin)' in line
    assert 'missing (' in line and 'unexpected (' in line


def test_an_unsafe_checkpoint_names_the_file_and_what_to_do(tmp_path):
    import numpy as np

    bad = tmp_path / 'numpy.pth'
    torch.save({'state_dict': {}, 'meta': {'x': np.float64(1.0)}}, bad)
    line, _ = _fail('tools/test.py', 'configs/cmpagl_demo.py', str(bad))
    assert str(bad) in line and 'allow-list' in line and 'do not widen' in line


@pytest.mark.parametrize(
    'args, message',
    [
        (['tools/retrieve.py', 'search', '/nonexistent/index', 'a plane'], 'index not found: /nonexistent/index'),
        (
            ['tools/retrieve.py', 'index', 'configs/cmpagl_demo.py', 'nope.pth', '.', '/tmp/idx'],
            'checkpoint not found: nope.pth',
        ),
        (['tools/retrieve.py', 'search', '.', ''], 'the query is empty'),
        (
            ['tools/visualization/attention_map.py', 'configs/cmpagl_demo.py', 'nope.pth', 'x.jpg'],
            'checkpoint not found: nope.pth',
        ),
        (['tools/visualization/retrieval_results.py', 'nope.npz'], 'similarity file not found: nope.npz'),
    ],
)
def test_search_and_figure_tools_check_their_inputs_first(args, message):
    line, elapsed = _fail(*args)
    assert message in line
    assert elapsed < 5.0


def test_attention_tool_lists_the_library_branches():
    import importlib.util

    from rsretrieval.visualization import BRANCHES

    spec = importlib.util.spec_from_file_location('attention_map', REPO / 'tools/visualization/attention_map.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.BRANCHES == BRANCHES
