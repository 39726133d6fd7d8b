"""``rsretrieval-weights inspect-open-clip`` and ``convert-open-clip`` on a tiny open_clip checkpoint."""

from __future__ import annotations

import pytest
import torch

from rsretrieval.weights.cli import main

pytest.importorskip('open_clip')

# ViT-B-32's layout at toy widths: 32 px images, patch 8, embedding 16
TINY = dict(
    embed_dim=16,
    vision_cfg=dict(image_size=32, patch_size=8, width=32, head_width=16, layers=2),
    text_cfg=dict(width=32, heads=2, layers=2),
)


@pytest.fixture
def training_checkpoint(tmp_path):
    """An open_clip training checkpoint: nested under 'state_dict', DDP's 'module.' prefix."""
    from rsretrieval.models.utils.open_clip_weights import build_open_clip

    state = build_open_clip('ViT-B-32', TINY).state_dict()  # logit scale 1 / 0.07
    path = tmp_path / 'epoch_1.pt'
    torch.save({'epoch': 1, 'state_dict': {f'module.{k}': v for k, v in state.items()}}, path)
    return path, state


def test_inspect_names_the_architecture(training_checkpoint, capsys):
    path, _ = training_checkpoint
    assert main(['inspect-open-clip', str(path)]) == 0
    out = capsys.readouterr().out
    assert 'ViT (width 32, 2 layers, patch 8, 32 px, embed 16)' in out and 'logit scale: 14.29' in out


def test_convert_writes_the_plain_state_dict(training_checkpoint, tmp_path, capsys):
    path, state = training_checkpoint
    out = tmp_path / 'plain.pt'
    assert main(['convert-open-clip', str(path), str(out)]) == 0
    assert capsys.readouterr().out.strip() == f'{out}: {len(state)} tensors'
    plain = torch.load(out, weights_only=True)
    assert plain.keys() == state.keys() and all(torch.equal(plain[k], state[k]) for k in state)


@pytest.mark.parametrize('command', ['inspect-open-clip', 'convert-open-clip'])
def test_an_unreadable_checkpoint_is_one_line_exit_2(tmp_path, capsys, command):
    no_tensors = tmp_path / 'no_tensors.pt'
    torch.save({'state_dict': {'step': 3}}, no_tensors)
    for path, message in ((tmp_path / 'missing.pt', 'missing.pt'), (no_tensors, 'holds no tensors')):
        args = [command, str(path)] + ([str(tmp_path / 'out.pt')] if command == 'convert-open-clip' else [])
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith('rsretrieval-weights: error: ') and message in line
    assert not (tmp_path / 'out.pt').exists()


def test_the_module_run_as_a_command_names_the_commands():
    """``python -m ...open_clip_weights`` was a command once: it now says where the commands are."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, '-m', 'rsretrieval.models.utils.open_clip_weights'], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert 'rsretrieval-weights inspect-open-clip CKPT' in result.stderr.strip().splitlines()[-1]
