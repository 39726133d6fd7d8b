"""tools/train.py checks its data before it builds the model, tidies a run that never
started, and keeps mmengine's dumps out of the console with --quiet."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from helpers import tiny_runner_cfg
from mmengine.config import Config
from mmengine.dataset import BaseDataset

from rsretrieval.apis.preflight import DataCheckError, check_run_data, loaders_of_training, tidy_unstarted_run

# what mmengine logs while it builds a Runner, and what only a built model logs
RUNNER_DUMPS = ('System environment', 'Config:', 'Hooks will be executed')


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, 'tools/train.py', *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def _tiny_config(tmp_path: Path, data_root: Path, **overrides) -> Path:
    """A config file of a tiny two-tower model on ``data_root`` whose ``data_root`` option moves every loader."""
    cfg = tiny_runner_cfg(str(tmp_path / 'unused'), str(data_root), **{'log_level': 'INFO', **overrides})
    cfg.pop('work_dir')  # from --work-dir
    path = tmp_path / 'tiny.py'
    Config(dict(cfg, data_root=str(data_root))).dump(path)
    return path


def _copy(demo_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / 'scenes'
    shutil.copytree(demo_root, root)
    return root


def test_a_wrong_data_root_fails_in_one_line_before_the_model(tmp_path):
    work = tmp_path / 'work'
    absent = tmp_path / 'absent'
    proc = _train('configs/cmpagl_rsicd_minilm-l6.py', '--work-dir', str(work), '--cfg-options', f'data_root={absent}')
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.splitlines()[-1] == (
        f'train.py: error: train_dataloader.dataset: Annotation file not found: '
        f'{absent}/annotations/dataset_rsicd.json (data_root {absent} does not exist)'
    )
    output = proc.stdout + proc.stderr
    assert len(output.splitlines()) <= 3 and 'Traceback' not in output
    assert not any(dump in output for dump in RUNNER_DUMPS)
    assert not work.exists() and not absent.exists()


def test_images_missing_from_the_folder_are_named(tmp_path, demo_root):
    root = _copy(demo_root, tmp_path)
    val_image = root / 'images' / '00024.png'  # the demo lists 24 train images, then the 6 of val
    val_image.unlink()
    work = tmp_path / 'work'
    proc = _train(str(_tiny_config(tmp_path, demo_root)), '--work-dir', str(work), '--cfg-options', f'data_root={root}')
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.splitlines()[-1] == (
        f'train.py: error: val_dataloader.dataset: 1 of 6 images listed in {root}/dataset_demo.json are missing, '
        f'e.g. {val_image}'
    )
    assert not any(dump in proc.stdout + proc.stderr for dump in RUNNER_DUMPS)
    assert not work.exists()


def test_quiet_keeps_the_dumps_out_of_the_console_and_in_the_log_file(tmp_path, demo_root):
    config = _tiny_config(tmp_path, demo_root)
    work = tmp_path / 'work'
    one_iteration = 'train_dataloader.dataset.indices=8'  # 8 (image, caption) pairs, the batch size
    proc = _train(str(config), '--quiet', '--work-dir', str(work), '--cfg-options', one_iteration)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    console = proc.stdout + proc.stderr
    assert not any(dump in console for dump in RUNNER_DUMPS), console
    assert 'Epoch(train) [1][1/1]' in console and 'val retrieval results (6 images, 30 captions)' in console
    (log,) = work.glob('*/*.log')
    logged = log.read_text()
    assert all(dump in logged for dump in RUNNER_DUMPS)
    assert 'Epoch(train) [1][1/1]' in logged


def test_a_run_that_fails_while_building_leaves_no_work_dir(tmp_path, demo_root):
    work = tmp_path / 'runs' / 'work'
    proc = _train(str(_tiny_config(tmp_path, demo_root)), '--work-dir', str(work),
                  '--cfg-options', 'optim_wrapper.optimizer.type=NoSuchOptimizer')  # fmt: skip
    # an error of the code or the config, not of the data: its traceback, then no trace on disk
    assert proc.returncode == 1 and 'build_optim_wrapper' in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / 'runs').exists()


def _checked(data_root: Path, **dataset) -> None:
    loader = dict(dataset=dict(type='RSCaptionDataset', data_root=str(data_root), ann_file='dataset_demo.json',
                               data_prefix=dict(img_path='images'), split='train', pipeline=[], **dataset))  # fmt: skip
    check_run_data(Config(dict(default_scope='rsretrieval', train_dataloader=loader)), ['train_dataloader'])


def test_an_empty_image_folder_and_an_unreadable_image(tmp_path, demo_root):
    root = _copy(demo_root, tmp_path)
    _checked(root)
    first = root / 'images' / '00000.png'
    first.write_bytes(b'not a png')
    with pytest.raises(DataCheckError, match=rf'^train_dataloader.dataset: unreadable image: .*{first}'):
        _checked(root)
    for image in (root / 'images').iterdir():
        image.unlink()
    with pytest.raises(DataCheckError, match=r'the image folder .*/images is empty \(24 images listed in'):
        _checked(root)
    shutil.rmtree(root / 'images')
    with pytest.raises(DataCheckError, match=r'^train_dataloader.dataset: image folder not found: .*/images$'):
        _checked(root)


def test_only_a_sample_of_the_images_is_decoded(tmp_path, demo_root, monkeypatch):
    from rsretrieval.apis import preflight

    decoded = []
    monkeypatch.setattr(preflight, 'read_rgb', decoded.append)
    _checked(demo_root)
    train_images = [str(demo_root / 'images' / f'{i:05d}.png') for i in range(24)]
    assert len(decoded) == preflight.SAMPLE_SIZE == len(set(decoded)) and set(decoded) <= set(train_images)
    assert decoded[0] == train_images[0] and decoded[-1] == train_images[-1]


class ItemsWithoutImages(BaseDataset):
    """A plugin's dataset that exposes no image paths."""

    def __init__(self, items: int, **kwargs) -> None:
        self.items = items
        super().__init__(**kwargs)

    def load_data_list(self) -> list[dict]:
        if self.items < 0:
            raise ValueError(f'{self.items} items')
        return [dict(value=i) for i in range(self.items)]


def test_a_dataset_without_image_paths_is_checked_by_building_it():
    def cfg(items: int) -> Config:
        loader = dict(dataset=dict(type=ItemsWithoutImages, items=items))
        return Config(dict(train_dataloader=loader, val_dataloader=None))

    check_run_data(cfg(3), loaders_of_training(cfg(3)))
    with pytest.raises(DataCheckError, match=r'^train_dataloader.dataset: -1 items$'):
        check_run_data(cfg(-1), loaders_of_training(cfg(-1)))


def test_tidying_keeps_what_existed_and_what_training_made(tmp_path):
    work = tmp_path / 'made' / 'work'
    with pytest.raises(KeyError), tidy_unstarted_run(str(work), 'tiny.py'):
        (work / '20260101_120000').mkdir(parents=True)
        (work / 'tiny.py').write_text('')
        raise KeyError('while building')
    assert not (tmp_path / 'made').exists()

    work.mkdir(parents=True)
    (work / 'tiny.py').write_text('')  # an earlier run's
    with pytest.raises(KeyError), tidy_unstarted_run(str(work), 'tiny.py'):
        (work / '20260101_120001').mkdir()
        (work / 'epoch_1.pth').write_bytes(b'')
        raise KeyError('while building')
    assert sorted(p.name for p in work.iterdir()) == ['epoch_1.pth', 'tiny.py']

    with pytest.raises(KeyError), tidy_unstarted_run(str(work), 'tiny.py') as start:
        (work / '20260101_120002').mkdir()
        start.before_train_iter(None, 0)
        raise KeyError('in the first iteration')
    assert (work / '20260101_120002').is_dir()
