"""The leakage check over UCM-Captions with planted copies (the issue's "Done when" case); skipped without ../shared."""

import os

import numpy as np
from conftest import SHARED_DATA, requires_shared

from rsretrieval.analysis.leakage import DEFAULT_THRESHOLD, check_leaks
from rsretrieval.analysis.leakage_copies import plant_copies
from rsretrieval.analysis.leakage_inputs import parse_config_spec, parse_folder_spec, read_groups
from rsretrieval.analysis.leakage_report import write_results
from rsretrieval.datasets.exclusions import read_exclusion_list

UCM = SHARED_DATA / 'ucm_captions'
# the five modifications the issue names, each planted four times
PLANTED = ['jpeg75', 'half', 'png', 'tif', 'crop5']


@requires_shared
def test_leak_check_on_ucm_finds_every_planted_copy_and_no_other_pair(tmp_path):
    # 20 images spread over the 21 classes and the three splits
    sources = [str(UCM / 'images' / f'{n}.jpg') for n in np.linspace(5, 2095, 20).astype(int)]
    planted = plant_copies(sources, str(tmp_path / 'copies'), PLANTED, seed=0)
    specs = [
        parse_config_spec(f'ucm=configs/cmpagl_ucm.py,data_root={UCM}'),
        parse_folder_spec(f'copies={tmp_path / "copies"}'),
    ]
    groups = read_groups(specs)
    assert [(g.label, len(g.filenames)) for g in groups] == [
        ('ucm/train', 1680),
        ('ucm/val', 210),
        ('ucm/test', 210),
        ('copies/heldout', 20),
    ]
    result = check_leaks(groups)
    found = {(os.path.basename(p.first.path), os.path.basename(p.second.path)) for p in result.pairs}
    assert found == {(os.path.basename(s), os.path.basename(c)) for c, s in planted.items()}
    assert max(p.distance for p in result.pairs) <= DEFAULT_THRESHOLD
    # the copies of training images make those images exclusions; copies of val/test images exclude nothing
    train_sources = {p.first.filename for p in result.pairs if p.first.split == 'train'}
    assert 0 < len(train_sources) < len(sources)
    files = write_results(result, str(tmp_path / 'out'))
    listed = read_exclusion_list(files.exclusions)
    assert {(e.source, e.split, e.filename) for e in listed.entries} == {('ucm', 'train', f) for f in train_sources}
