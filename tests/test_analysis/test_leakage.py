"""The leakage check on synthetic images with planted copies: every copy found, nothing else, and its inputs."""

import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from rsretrieval.analysis.leakage import DEFAULT_THRESHOLD, check_leaks
from rsretrieval.analysis.leakage_copies import plant_copies
from rsretrieval.analysis.leakage_hashing import WindowedPHash, hash_files
from rsretrieval.analysis.leakage_inputs import (
    InputSpec,
    LeakCheckError,
    config_groups,
    folder_group,
    parse_config_spec,
    parse_folder_spec,
    read_groups,
)
from rsretrieval.analysis.leakage_report import write_results
from rsretrieval.datasets.exclusions import read_exclusion_list

SIDE = 128


def texture(seed: int) -> Image.Image:
    """A smooth random RGB texture: noise on coarse grids, enlarged and summed (like aerial scenes, mostly
    low frequencies)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((SIDE, SIDE, 3), np.float32)
    for cells, weight in ((4, 1.0), (8, 0.6), (16, 0.35), (32, 0.2)):
        for channel in range(3):
            grid = Image.fromarray(rng.random((cells, cells), dtype=np.float32), 'F')
            image[..., channel] += weight * np.asarray(grid.resize((SIDE, SIDE), Image.Resampling.BICUBIC))
    image = (image - image.min()) / (image.max() - image.min()) * 255
    return Image.fromarray(image.astype(np.uint8), 'RGB')


def write_textures(folder, seeds) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = folder / f'tex_{seed:03d}.jpg'
        texture(seed).save(path, quality=90)
        paths.append(str(path))
    return paths


#: The five modifications the issue names, twice each, then crops of 3 % and of one side and a crop halved and
#: re-encoded: each a copy of another training texture.
PLANTED = ['jpeg75', 'half', 'png', 'tif', 'crop5'] * 2 + ['crop3', 'crop5_oneside', 'crop5_half_jpeg75']


@pytest.fixture(scope='module')
def planted(tmp_path_factory):
    """A training folder of 16 textures; a held-out folder with 6 other textures and a copy of each of 13
    training images, made by the modifications of ``PLANTED``."""
    root = tmp_path_factory.mktemp('leak')
    train = write_textures(root / 'train', range(16))
    write_textures(root / 'heldout', range(100, 106))
    copies = plant_copies(train[: len(PLANTED)], str(root / 'heldout'), PLANTED, seed=0)
    copies = {os.path.basename(copy): os.path.basename(source) for copy, source in copies.items()}
    groups = [
        folder_group(InputSpec('archive', 'folder', str(root / 'train'), held_out=False)),
        folder_group(InputSpec('bench', 'folder', str(root / 'heldout'))),
    ]
    return root, groups, copies


def test_leak_check_finds_every_planted_copy_and_no_other_pair(planted):
    _, groups, copies = planted
    result = check_leaks(groups, workers=2)
    found = {(p.first.filename, p.second.filename) for p in result.pairs}
    assert found == {(source, copy) for copy, source in copies.items()}
    assert all(p.kind == 'leak' and p.first.source == 'archive' for p in result.pairs)
    assert max(p.distance for p in result.pairs) <= DEFAULT_THRESHOLD
    # the training side of each leak is excluded, with its file's sha256 and the held-out copy named
    assert [e.filename for e in result.exclusions] == sorted(copies.values())
    for entry in result.exclusions:
        path = groups[0].root + '/' + entry.filename
        with open(path, 'rb') as f:
            assert entry.sha256 == hashlib.sha256(f.read()).hexdigest()
        assert (entry.source, entry.split) == ('archive', 'train')
        assert entry.reason.startswith(f'near-duplicate of bench/heldout/{entry.filename[:-4]}_')


def test_leak_check_distinct_textures_are_far_from_the_threshold(planted):
    """The textures that are not copies are well apart: what finds the copies is not a loose threshold."""
    _, groups, copies = planted
    result = check_leaks(groups, near_margin=20, workers=1)
    assert len(result.pairs) == len(copies)
    assert result.near_misses == []


def test_leak_exclusion_list_round_trips_through_the_reader(planted, tmp_path):
    _, groups, _ = planted
    result = check_leaks(groups, workers=1)
    files = write_results(result, str(tmp_path / 'out'))
    listed = read_exclusion_list(files.exclusions)
    assert listed.entries == tuple(result.exclusions)
    with open(files.exclusions, 'rb') as f:
        assert listed.sha256 == files.exclusions_sha256 == hashlib.sha256(f.read()).hexdigest()
    assert listed.check['threshold'] == DEFAULT_THRESHOLD
    assert [g['images'] for g in listed.check['groups']] == [16, 6 + len(PLANTED)]
    # the same check writes the same bytes: the list's sha256 identifies the findings
    again = write_results(check_leaks(groups, workers=1), str(tmp_path / 'again'))
    assert again.exclusions_sha256 == files.exclusions_sha256
    pairs = json.loads((tmp_path / 'out' / 'pairs.json').read_text())['pairs']
    assert {p['b']['filename'] for p in pairs} == {p.second.filename for p in result.pairs}
    assert set(pairs[0]['a']) == {'source', 'split', 'filename', 'path'}
    csv_rows = (tmp_path / 'out' / 'pairs.csv').read_text().splitlines()
    assert csv_rows[0].startswith('distance,kind,a_source,a_split,a_filename,a_path,b_source')
    assert len(csv_rows) == 1 + len(result.pairs)
    report = (tmp_path / 'out' / 'report.md').read_text()
    assert files.exclusions_sha256 in report
    assert f'| archive/train | bench/heldout | leak | {len(result.pairs)} |' in report


def test_leak_pairs_are_looked_for_across_groups_only(tmp_path):
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    image = texture(7)
    for name in ('a/one.png', 'a/two.png', 'b/three.png'):
        image.save(tmp_path / name)
    texture(8).save(tmp_path / 'b' / 'other.png')
    groups = [folder_group(InputSpec(n, 'folder', str(tmp_path / n))) for n in ('a', 'b')]
    result = check_leaks(groups, workers=1)
    # one.png and two.png are identical, but in one group: only the cross-group pairs are reported
    assert sorted((p.first.filename, p.second.filename, p.distance) for p in result.pairs) == [
        ('one.png', 'three.png', 0),
        ('two.png', 'three.png', 0),
    ]
    assert {p.kind for p in result.pairs} == {'held-out'}
    assert result.exclusions == []  # two held-out folders: nothing to exclude


def test_leak_hashes_of_a_jpeg_and_its_png_agree_closely(tmp_path):
    """The JPEG draft decode gives nearly the hash of the same pixels decoded in full."""
    texture(3).save(tmp_path / 'a.jpg', quality=95)
    Image.open(tmp_path / 'a.jpg').save(tmp_path / 'a.png')
    codes = hash_files([str(tmp_path / 'a.jpg'), str(tmp_path / 'a.png')], WindowedPHash(), workers=1)
    assert codes.shape == (2, len(WindowedPHash().windows), 32)
    assert np.unpackbits(codes[0] ^ codes[1]).sum() <= DEFAULT_THRESHOLD // 4


def test_leak_config_groups_name_images_as_the_annotation_does(demo_root):
    groups = config_groups(
        InputSpec('demo', 'config', 'configs/cmpagl_demo.py', {'data_root': str(demo_root)}),
    )
    assert [(g.label, len(g.filenames), g.held_out) for g in groups] == [
        ('demo/train', 24, False),
        ('demo/val', 6, True),
        ('demo/test', 8, True),
    ]
    annotation = json.loads((demo_root / 'dataset_demo.json').read_text())
    by_split = {}
    for image in annotation['images']:
        by_split.setdefault(image['split'], []).append(image['filename'])
    for group in groups:
        assert list(group.filenames) == by_split[group.split]
        assert group.root == str(demo_root / 'images')


def test_leak_config_groups_read_whole_splits_and_merge_loaders_of_one_split(demo_root):
    options = {
        'data_root': str(demo_root),
        'train_dataloader.dataset.indices': 5,  # a subset the training would draw: the check reads the whole split
        'test_dataloader.dataset.split': 'val',  # the test loader reads the val split: one group
    }
    groups = read_groups([InputSpec('demo', 'config', 'configs/cmpagl_demo.py', options)], held_out_splits=('test',))
    assert [(g.label, len(g.filenames), g.held_out) for g in groups] == [
        ('demo/train', 24, False),
        ('demo/val', 6, False),
    ]
    assert groups[1].origin.endswith('val_dataloader, test_dataloader')


def test_leak_specs_parse_names_paths_options_and_roles():
    spec = parse_config_spec('ucm=configs/cmpagl_ucm.py,data_root=/data/ucm,train_dataloader.dataset.indices=[1,2]')
    assert (spec.name, spec.kind, spec.path) == ('ucm', 'config', 'configs/cmpagl_ucm.py')
    assert spec.options == {'data_root': '/data/ucm', 'train_dataloader.dataset.indices': [1, 2]}
    assert parse_folder_spec('archive=/data/a:train') == InputSpec('archive', 'folder', '/data/a', held_out=False)
    assert parse_folder_spec('bench=/data/b:heldout').held_out
    # a colon that names no role is part of the path
    assert parse_folder_spec('old=/data/x:2020').path == '/data/x:2020'


@pytest.mark.parametrize(
    'parse, text, message',
    [
        (parse_config_spec, 'configs/cmpagl_ucm.py', "'configs/cmpagl_ucm.py': expected NAME=CONFIG"),
        (parse_config_spec, 'u/cm=configs/cmpagl_ucm.py', "the name 'u/cm' must be letters"),
        (parse_config_spec, 'ucm=', 'no config file after ucm='),
        (parse_folder_spec, '=/data', "the name '' must be letters"),
        (parse_folder_spec, 'a=:train', 'no folder after a='),
    ],
)
def test_leak_bad_specs_give_one_line_naming_them(parse, text, message):
    with pytest.raises(LeakCheckError, match='^.*$') as err:
        parse(text)
    assert message in str(err.value)
    assert '\n' not in str(err.value)


def test_leak_bad_folders_and_names_give_one_line(tmp_path):
    with pytest.raises(LeakCheckError, match=f'a={tmp_path}/missing: folder not found: {tmp_path}/missing'):
        folder_group(parse_folder_spec(f'a={tmp_path}/missing'))
    (tmp_path / 'notes.txt').write_text('not an image')
    with pytest.raises(LeakCheckError, match=r'no image file in .* \(1 other files'):
        folder_group(parse_folder_spec(f'a={tmp_path}'))
    specs = [parse_folder_spec(f'a={tmp_path}'), parse_folder_spec(f'a={tmp_path}/x')]
    with pytest.raises(LeakCheckError, match="the name 'a' is given twice"):
        read_groups(specs)
    with pytest.raises(LeakCheckError, match='config not found|cannot be read'):
        read_groups([parse_config_spec(f'c={tmp_path}/nope.py')])


def test_leak_config_with_a_missing_dataset_names_the_loader(tmp_path):
    spec = parse_config_spec(f'demo=configs/cmpagl_ucm.py,data_root={tmp_path}/nowhere')
    with pytest.raises(LeakCheckError, match=r'^demo=configs/cmpagl_ucm.py: train_dataloader.dataset: .*nowhere'):
        config_groups(spec)


@pytest.mark.parametrize('workers', [1, 2])
def test_leak_unreadable_image_is_named(tmp_path, workers):
    for name in ('a', 'b'):
        write_textures(tmp_path / name, range(3) if name == 'a' else range(10, 80))
    (tmp_path / 'b' / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n not really')
    groups = [folder_group(InputSpec(n, 'folder', str(tmp_path / n))) for n in ('a', 'b')]
    with pytest.raises(LeakCheckError, match=f'^unreadable image {tmp_path}/b/broken.png: '):
        check_leaks(groups, workers=workers)


def test_leak_check_needs_two_groups_and_a_threshold_inside_the_hash(planted):
    _, groups, _ = planted
    with pytest.raises(LeakCheckError, match=r'one group of images only \(archive/train\)'):
        check_leaks(groups[:1])
    with pytest.raises(LeakCheckError, match='threshold 256 must be between 0 and 255 bits'):
        check_leaks(groups, threshold=256)


def test_leak_hashing_progress_is_a_plain_line_per_tenth_off_a_terminal(tmp_path):
    import io

    paths = write_textures(tmp_path, range(20))
    stream = io.StringIO()
    hash_files(paths, WindowedPHash(windows=((0.0, 0.0, 1.0, 1.0),)), workers=2, progress_stream=stream, chunk=2)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10 and '\r' not in stream.getvalue()
    assert lines[0].startswith('hashed 2/20 images, ') and lines[-1].startswith('hashed 20/20 images, ')
