"""``tools/test.py`` on a CPU keeps freed memory for the next test batch, as ``index`` does."""

import runpy
import sys

import torch
from conftest import REPO

import rsretrieval.utils


def test_test_tool_on_a_cpu_keeps_freed_memory_for_the_next_batch(tiny_demo_checkpoint, tmp_path, monkeypatch):
    ckpt, cli = tiny_demo_checkpoint
    calls = []
    monkeypatch.setattr(rsretrieval.utils, 'keep_freed_cpu_memory', lambda: calls.append(1) or True)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    argv = ['tools/test.py', str(REPO / 'configs' / 'cmpagl_demo.py'), str(ckpt), '--work-dir', str(tmp_path), *cli]
    monkeypatch.setattr(sys, 'argv', argv)
    runpy.run_path(str(REPO / 'tools' / 'test.py'), run_name='__main__')
    assert calls == [1]
