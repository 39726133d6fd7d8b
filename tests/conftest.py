import os
from pathlib import Path

import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')

from rsretrieval.utils import register_all_modules  # noqa: E402

register_all_modules()

# a loopback Hugging Face Hub mirror and tiny real-layout weights (tests/hub_fixtures.py)
pytest_plugins = ('hub_fixtures',)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / 'shared' / 'data'

requires_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason='../shared/data is absent')


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory) -> Path:
    """A small generated demo dataset (32 px images) shared by the session."""
    from rsretrieval.datasets import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp('demo') / 'scenes', 24, 6, 8, image_size=32, seed=1)


@pytest.fixture(scope='session')
def tiny_demo_checkpoint(tmp_path_factory, demo_root):
    """A randomly initialised CMPAGL of ``configs/cmpagl_demo.py`` shrunk by
    ``TINY_DEMO_OPTIONS``: ``(checkpoint path, --cfg-options arguments)``."""
    import argparse

    import torch
    from helpers import TINY_DEMO_OPTIONS
    from mmengine.config import DictAction

    from rsretrieval.apis import init_model

    cli = [f'data_root={demo_root}', *TINY_DEMO_OPTIONS]
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    torch.manual_seed(0)
    model = init_model(REPO / 'configs' / 'cmpagl_demo.py', cfg_options=parser.parse_args(['--o', *cli]).o)
    ckpt = tmp_path_factory.mktemp('tiny_ckpt') / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    return ckpt, ['--cfg-options', *cli]


@pytest.fixture
def tiny(tiny_demo_checkpoint):
    """The tiny checkpoint, its ``--cfg-options`` arguments and the options they parse to."""
    import argparse

    from mmengine.config import DictAction

    ckpt, cli = tiny_demo_checkpoint
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return ckpt, cli, parser.parse_args(cli).cfg_options
