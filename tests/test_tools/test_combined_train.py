"""tools/train.py on the combined-data smoke config (demo scenes plus a second dataset, exclusion
applied, validated part by part), and the preflight's checks of a combined dataset."""

import json
import subprocess
import sys

import pytest
from conftest import REPO
from helpers import TINY_DEMO_OPTIONS

from rsretrieval.apis.preflight import DataCheckError, check_run_data
from rsretrieval.datasets import ExclusionEntry, make_demo_dataset, write_exclusion_list
from rsretrieval.utils.cfg_options import apply_cfg_options
from rsretrieval.utils.config_files import read_config
from rsretrieval.weights.hashing import file_sha256

SMOKE_CONFIG = 'configs/cmpagl_demo+ucm_combined.py'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


@pytest.fixture(scope='module')
def second_root(tmp_path_factory):
    """Other generated scenes standing in for UCM-Captions (read with the demo's annotation file name)."""
    return make_demo_dataset(tmp_path_factory.mktemp('second') / 'scenes', 12, 4, 4, image_size=32, seed=5)


def _train_names(root):
    images = json.loads((root / 'dataset_demo.json').read_text())['images']
    return [img['filename'] for img in images if img['split'] == 'train']


def _options(demo_root, second_root, exclusions) -> list[str]:
    """--cfg-options that move the smoke config onto the two generated datasets and the list."""
    # 12 training images, 60 pairs: 8 iterations of the tiny model
    options = [
        f'data_root={demo_root}',
        'train_dataloader.dataset.datasets.0.subset.num_images=8',
        'train_dataloader.dataset.datasets.1.subset.num_images=4',
    ]
    for loader in LOADERS:
        options += [
            f'{loader}.dataset.datasets.1.data_root={second_root}',
            f'{loader}.dataset.datasets.1.ann_file=dataset_demo.json',
        ]
    options += [f'train_dataloader.dataset.datasets.{i}.exclude.file={exclusions}' for i in (0, 1)]
    return options


def test_combined_smoke_config_trains_with_the_exclusion_and_validates_each_part(tmp_path, demo_root, second_root):
    demo_out, second_out = _train_names(demo_root)[:4], _train_names(second_root)[:2]
    entries = [ExclusionEntry('demo', 'train', n, file_sha256(str(demo_root / 'images' / n))) for n in demo_out]
    entries += [ExclusionEntry('ucm', 'train', n, file_sha256(str(second_root / 'images' / n))) for n in second_out]
    exclusions = tmp_path / 'exclusions.json'
    sha = write_exclusion_list(str(exclusions), entries, check=dict(hash='planted'))
    work = tmp_path / 'work'
    options = _options(demo_root, second_root, exclusions) + TINY_DEMO_OPTIONS
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', SMOKE_CONFIG, '--work-dir', str(work), '--cfg-options', *options],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    # the training parts: what was excluded, then the subsets drawn from the images left
    assert f"excluded 4 of 24 images (20 captions) listed for 'demo' in {exclusions} (sha256 {sha})" in out
    assert f"excluded 2 of 12 images (10 captions) listed for 'ucm' in {exclusions} (sha256 {sha})" in out
    assert "combined dataset (train mode), part 'demo': " in out and '8 images, 40 captions' in out
    assert "combined dataset (train mode), part 'ucm': " in out and '4 images, 20 captions' in out
    # validation on each dataset's own val split, the mean selecting the checkpoint
    assert "combined dataset (test mode), part 'ucm': " in out and '4 images, 20 captions' in out
    scalars = [json.loads(line) for line in next(work.rglob('scalars.json')).read_text().splitlines()]
    val = next(s for s in scalars if 'mR' in s)
    assert {'demo/mR', 'ucm/mR'} <= set(val)
    assert val['mR'] == pytest.approx((val['demo/mR'] + val['ucm/mR']) / 2, abs=1e-6)
    assert (work / 'epoch_1.pth').is_file()


def test_preflight_checks_every_part_of_a_combined_dataset(tmp_path, demo_root, second_root):
    exclusions = tmp_path / 'exclusions.json'
    write_exclusion_list(str(exclusions), [], check=dict(hash='planted'))
    cfg = apply_cfg_options(read_config(str(REPO / SMOKE_CONFIG)), _parse(_options(demo_root, second_root, exclusions)))
    check_run_data(cfg, ['train_dataloader', 'val_dataloader'])  # both parts present: no problem

    absent = tmp_path / 'absent'
    cfg = apply_cfg_options(cfg, {'val_dataloader.dataset.datasets.1.data_root': str(absent)})
    with pytest.raises(DataCheckError) as err:
        check_run_data(cfg, ['train_dataloader', 'val_dataloader'])
    assert str(err.value) == (
        f'val_dataloader.dataset: datasets[1] (ucm): Annotation file not found: {absent}/dataset_demo.json '
        f'(data_root {absent} does not exist)'
    )
    # the note is about the part the error names: part 0's missing list, not part 1's root
    cfg = apply_cfg_options(
        cfg,
        {
            'train_dataloader.dataset.datasets.0.exclude.file': str(tmp_path / 'none.json'),
            'train_dataloader.dataset.datasets.1.data_root': str(absent),
        },
    )
    with pytest.raises(DataCheckError) as err:
        check_run_data(cfg, ['train_dataloader'])
    assert str(err.value).startswith('train_dataloader.dataset: datasets[0] (demo): exclusion list ')
    assert 'data_root' not in str(err.value)


def test_preflight_finds_a_missing_image_of_a_part(tmp_path, demo_root, second_root):
    import shutil

    copy = tmp_path / 'second'
    shutil.copytree(second_root, copy)
    (copy / 'images' / _train_names(copy)[5]).unlink()
    exclusions = tmp_path / 'exclusions.json'
    write_exclusion_list(str(exclusions), [], check=dict(hash='planted'))
    options = _parse(_options(demo_root, copy, exclusions))
    options['train_dataloader.dataset.datasets.1.subset.num_images'] = 12  # every image, the missing one too
    options['train_dataloader.dataset.datasets.0.subset.num_images'] = 24
    cfg = apply_cfg_options(read_config(str(REPO / SMOKE_CONFIG)), options)
    with pytest.raises(
        DataCheckError, match=r'train_dataloader.dataset: 1 of 36 images are missing, e.g. .*/00005\.png'
    ):
        check_run_data(cfg, ['train_dataloader'])


def _parse(options: list[str]) -> dict:
    parsed = {}
    for option in options:
        key, value = option.split('=', 1)
        parsed[key] = int(value) if value.isdigit() else value
    return parsed
