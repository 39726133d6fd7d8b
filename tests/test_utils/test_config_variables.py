"""Top-level variables (data_root, text_weights, image_weights) set in a child config."""

import re
from pathlib import Path

import pytest
from conftest import REPO
from mmengine.config import Config

from rsretrieval.utils import ConfigError, merge_cfg_options, read_config

CONFIGS = REPO / 'configs'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def _child(folder: Path, base: Path | str, body: str, name: str = 'child.py') -> str:
    """A config in ``folder`` that inherits ``base`` and adds ``body``."""
    return _write(folder, name, f'_base_ = [{str(base)!r}]\n{body}\n')


def _data_roots(cfg: Config) -> list[str]:
    return [cfg[loader].dataset.data_root for loader in LOADERS]


def _differences(read: object, plain: object, path: str = '') -> list[tuple[str, object, object]]:
    """``(dotted key, value in read, value in plain)`` wherever the two trees differ."""
    if isinstance(read, dict) and isinstance(plain, dict):
        return [
            difference
            for key in sorted(set(read) | set(plain), key=str)
            for difference in _differences(read.get(key, '<absent>'), plain.get(key, '<absent>'), f'{path}.{key}')
        ]
    if isinstance(read, (list, tuple)) and isinstance(plain, (list, tuple)) and len(read) == len(plain):
        return [d for i, pair in enumerate(zip(read, plain)) for d in _differences(*pair, f'{path}[{i}]')]
    return [] if read == plain else [(path, read, plain)]


def test_child_data_root_moves_every_dataset(tmp_path):
    child = _child(tmp_path, CONFIGS / 'cmpagl_ucm_cpu.py', "data_root = '/data/ucm_captions'")
    cfg = read_config(child)
    assert _data_roots(cfg) == ['/data/ucm_captions'] * 3
    # nothing else moves: the parent read plainly, with its data_root keys replaced, is the same tree
    parent = Config.fromfile(str(CONFIGS / 'cmpagl_ucm_cpu.py')).to_dict()
    moved = ['.data_root', '._dataset.data_root', *(f'.{loader}.dataset.data_root' for loader in LOADERS)]
    assert _differences(cfg.to_dict(), parent) == sorted(
        (key, '/data/ucm_captions', 'data/ucm_captions') for key in moved
    )


def test_child_keeps_a_dataset_it_points_elsewhere(tmp_path):
    body = "data_root = '/data/ucm'\ntest_dataloader = dict(dataset=dict(data_root='/data/ucm_test'))"
    cfg = read_config(_child(tmp_path, CONFIGS / 'cmpagl_ucm_cpu.py', body))
    assert _data_roots(cfg) == ['/data/ucm', '/data/ucm', '/data/ucm_test']


def test_cfg_options_data_root_on_a_child(tmp_path):
    child = _child(tmp_path, CONFIGS / 'cmpagl_ucm_cpu.py', "data_root = '/data/ucm_captions'")
    same = merge_cfg_options(read_config(child), {'data_root': '/data/ucm_captions'})
    assert _data_roots(same) == ['/data/ucm_captions'] * 3
    other = merge_cfg_options(read_config(child), {'data_root': '/mnt/ucm'})
    assert _data_roots(other) == ['/mnt/ucm'] * 3 and other.data_root == '/mnt/ucm'


def _part_roots(cfg: Config) -> list[list[str]]:
    return [[part.data_root for part in cfg[loader].dataset.datasets] for loader in LOADERS]


def test_combined_config_moves_one_part_by_its_root_variable(tmp_path):
    combined = CONFIGS / 'cmpagl_demo+ucm_combined.py'
    child = read_config(_child(tmp_path, combined, "ucm_root = '/data/ucm'"))
    assert _part_roots(child) == [['data/demo_scenes', '/data/ucm']] * 3
    by_option = merge_cfg_options(read_config(str(combined)), {'ucm_root': '/mnt/ucm', 'data_root': '/mnt/demo'})
    assert _part_roots(by_option) == [['/mnt/demo', '/mnt/ucm']] * 3


def test_child_text_weights_move_both_text_stacks(tmp_path):
    child = _child(tmp_path, CONFIGS / 'cmpagl_ucm_minilm-l6.py', "text_weights = '/weights/bert'")
    cfg = read_config(child)
    assert cfg.model.text_encoder.pretrained == '/weights/bert'
    assert cfg.model.fusion_head.pretrained == '/weights/bert'
    assert cfg.model.backbone.pretrained is None  # image_weights, not text_weights


def test_child_image_weights_move_the_backbone(tmp_path):
    cfg = read_config(_child(tmp_path, CONFIGS / 'cmpagl_ucm.py', "image_weights = '/weights/swin.pth'"))
    assert cfg.model.backbone.pretrained == '/weights/swin.pth'
    assert cfg.model.text_encoder.pretrained == 'bert-base-uncased'


def test_two_user_levels(tmp_path):
    first = _child(tmp_path, CONFIGS / 'cmpagl_ucm_cpu.py', "data_root = '/data/a'", name='first.py')
    second = _child(tmp_path, first, "data_root = '/data/b'", name='second.py')
    untouched = _child(tmp_path, first, 'train_dataloader = dict(batch_size=8)', name='untouched.py')
    assert _data_roots(read_config(second)) == ['/data/b'] * 3
    cfg = read_config(untouched)
    assert _data_roots(cfg) == ['/data/a'] * 3 and cfg.train_dataloader.batch_size == 8


def test_placeholders_of_mmengine(tmp_path, monkeypatch):
    monkeypatch.setenv('RSRETRIEVAL_TEST_ROOT', '/data/from_env')
    _child(tmp_path, CONFIGS / 'cmpagl_ucm_cpu.py', 'train_dataloader = dict(batch_size=8)', name='first.py')
    text = "_base_ = ['{{ fileDirname }}/first.py']\ndata_root = '{{$RSRETRIEVAL_TEST_ROOT:/data/default}}'\n"
    cfg = read_config(_write(tmp_path, 'second.py', text))
    assert _data_roots(cfg) == ['/data/from_env'] * 3 and cfg.train_dataloader.batch_size == 8


def test_variable_without_nested_copies_is_refused(tmp_path):
    base = _write(
        tmp_path, 'base.py', "data_root = 'data/x'\ntrain_dataloader = dict(dataset=dict(data_root='data/y'))\n"
    )
    child = _child(tmp_path, base, "data_root = '/new'")
    with pytest.raises(ConfigError) as err:
        read_config(child)
    message = str(err.value)
    assert '\n' not in message
    assert message.startswith(f"config {child}: data_root = '/new' changes nothing")
    assert "held its base value 'data/x'" in message and 'train_dataloader.dataset.data_root' in message


@pytest.mark.parametrize(
    ('base', 'body', 'expected'),
    [
        # the demo-size model of cmpagl_ucm_cpu.py names its weights without a variable
        ('cmpagl_ucm_cpu.py', "text_weights = '/w'", 'its bases define no text_weights'),
        # None is the value of every unset 'pretrained': no key can be told to be its copy
        ('cmpagl_ucm_minilm-l6.py', "image_weights = 'swin-t-in1k'", 'set model.backbone.pretrained instead'),
        ('_base_/models/cmpagl_gswin-tiny_minilm-l3.py', "data_root = '/data'", 'its bases define no data_root'),
    ],
)
def test_variable_that_nothing_follows_is_refused(tmp_path, base, body, expected):
    child = _child(tmp_path, CONFIGS / base, body)
    with pytest.raises(ConfigError, match=f'^config {re.escape(child)}: .* changes nothing .*{re.escape(expected)}'):
        read_config(child)


# image_weights = None in _base_/models/cmpagl_gswin_minilm-l6.py moves the image encoders of
# the ablations (`image_backbones`) that its parent derived from 'swin-t-in1k', which mmengine
# alone leaves at 'swin-t-in1k'; the model's own backbone is set in that file and agrees.
_MINILM_L6_DIFFERENCES = [
    (f'.{key}.pretrained', None, 'swin-t-in1k')
    for key in ('_swin_t', 'image_backbones.gswin', 'image_backbones.swin', 'image_backbones.swin_gswin_layout')
]
_MINILM_L6_CONFIGS = (
    '_base_/models/cmpagl_gswin_minilm-l6.py',
    'cmpagl_rsicd_minilm-l6.py',
    'cmpagl_rsitmd_minilm-l6.py',
    'cmpagl_sydney_minilm-l6.py',
    'cmpagl_ucm_minilm-l6.py',
)
_EXPECTED_DIFFERENCES = dict.fromkeys(_MINILM_L6_CONFIGS, _MINILM_L6_DIFFERENCES)


@pytest.mark.parametrize('name', sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob('*.py')))
def test_shipped_configs_read_as_mmengine_reads_them(name):
    path = str(CONFIGS / name)
    differences = _differences(read_config(path).to_dict(), Config.fromfile(path).to_dict())
    assert differences == _EXPECTED_DIFFERENCES.get(name, [])
