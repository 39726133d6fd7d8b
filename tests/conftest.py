import os
from pathlib import Path

import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')

from rsretrieval.utils import register_all_modules  # noqa: E402

register_all_modules()

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / 'shared' / 'data'

requires_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason='../shared/data is absent')


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory) -> Path:
    """A small generated demo dataset (32 px images) shared by the session."""
    from rsretrieval.datasets import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp('demo') / 'scenes', 24, 6, 8, image_size=32, seed=1)
