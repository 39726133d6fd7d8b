"""``index --list FILE`` and ``index --split-of ANNOTATION_FILE --split NAME``: which images are indexed."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest
from conftest import REPO
from helpers import interrupt_embedding_after

import rsretrieval.apis
from rsretrieval.datasets.annotation_formats import load_annotations
from rsretrieval.search import ArchiveIndex
from rsretrieval.search.cli import main
from rsretrieval.search.image_lists import (
    ImageListError,
    links_leaving_root,
    listed_images,
    relative_to_root,
    split_images,
)

CONFIG = str(REPO / 'configs' / 'cmpagl_demo.py')


@pytest.fixture
def archive(tmp_path, demo_root):
    """A copy of the demo images in ``archive/scenes``: ``(archive, sorted names)``."""
    folder = tmp_path / 'archive'
    shutil.copytree(demo_root / 'images', folder / 'scenes')
    return folder, sorted(p.name for p in (folder / 'scenes').iterdir())


def _write(path, *lines):
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    return path


def _index(tiny_demo_checkpoint, image_dir, index_dir, *extra):
    ckpt, cli = tiny_demo_checkpoint
    main(['index', CONFIG, str(ckpt), str(image_dir), str(index_dir), '--device', 'cpu', *map(str, extra), *cli])


def _fails(capsys, argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err.strip()


# -------------------------------------------------------------------- reading a list
def test_a_list_keeps_its_order_and_skips_comments_blank_lines_and_repeats(tmp_path, archive):
    folder, names = archive
    absolute = folder / 'scenes' / names[0]
    list_file = _write(
        tmp_path / 'list.txt',
        '# the test images',
        f'scenes/{names[2]}',
        '',
        f'   ./scenes/{names[1]}  ',
        str(absolute),
        f'scenes/{names[2]}',  # a repeat
        f'scenes/sub/../{names[1]}',  # the same image, named otherwise
    )
    selection = listed_images(list_file, folder)
    assert selection.paths == [f'scenes/{names[2]}', f'scenes/{names[1]}', f'scenes/{names[0]}']
    assert selection.source == f'listed in {list_file}'
    assert selection.notes == (
        f'2 repeated entries of {list_file} indexed once: {list_file}:6: repeats {list_file}:2 '
        f'(scenes/{names[2]}); and 1 more: {list_file}:7',
    )


def test_a_missing_image_is_named_by_its_line_and_the_others_are_counted(tmp_path, archive):
    folder, names = archive
    list_file = _write(tmp_path / 'list.txt', f'scenes/{names[0]}', '# c', 'scenes/gone.png', 'lost.tif', 'scenes')
    with pytest.raises(ImageListError) as info:
        listed_images(list_file, folder)
    assert str(info.value) == (
        f'{list_file}:3: image not found: {folder}/scenes/gone.png; and 2 more: {list_file}:4, {list_file}:5'
    )
    _write(list_file, 'scenes')
    with pytest.raises(ImageListError, match=r'list.txt:1: a folder, not an image file'):
        listed_images(list_file, folder)


@pytest.mark.parametrize('entry', ['../outside.png', 'scenes/../../outside.png', '{tmp}/outside.png', '/etc/hosts'])
def test_a_path_out_of_the_image_folder_is_refused(tmp_path, archive, entry):
    folder, _ = archive
    (tmp_path / 'outside.png').write_bytes(b'x')
    list_file = _write(tmp_path / 'list.txt', entry.format(tmp=tmp_path))
    with pytest.raises(ImageListError, match=rf'list.txt:1: .* is outside the image folder {re.escape(str(folder))}'):
        listed_images(list_file, folder)


def test_an_empty_list_and_a_line_that_is_not_utf8_are_refused(tmp_path, archive):
    folder, names = archive
    list_file = _write(tmp_path / 'list.txt', '# only a comment', '')
    with pytest.raises(ImageListError, match='names no image'):
        listed_images(list_file, folder)
    list_file.write_bytes(f'scenes/{names[0]}\nscenes/caf\xe9.png\n'.encode('latin-1'))
    with pytest.raises(ImageListError, match=r'list.txt:2: not UTF-8 text'):
        listed_images(list_file, folder)


def test_relative_to_root_through_a_linked_root(tmp_path):
    real = tmp_path / 'real'
    (real / 'a').mkdir(parents=True)
    (tmp_path / 'alias').symlink_to(real, target_is_directory=True)
    alias = tmp_path / 'alias'
    assert relative_to_root('a/x.png', alias) == 'a/x.png'
    assert relative_to_root(f'{alias}/a/x.png', alias) == 'a/x.png'
    assert relative_to_root(f'{real}/a/x.png', alias) == 'a/x.png'  # under the root's real path
    assert relative_to_root(f'{tmp_path}/other/x.png', alias) is None
    assert relative_to_root('a/../../x.png', alias) is None


# ---------------------------------------------------------------------------- splits
def test_a_split_gives_the_images_of_that_split_in_file_order(demo_root):
    ann = demo_root / 'dataset_demo.json'
    selection = split_images(ann, 'test', demo_root / 'images')
    assert selection.paths == [r.filename for r in load_annotations(ann, 'test')]
    train = split_images(ann, 'train', demo_root / 'images').paths
    assert selection.paths and not set(selection.paths) & set(train)
    assert selection.source == f'in the test split of {ann}'


def test_a_split_names_a_missing_image_by_its_entry_and_an_unknown_split(tmp_path, demo_root):
    data = json.loads((demo_root / 'dataset_demo.json').read_text())
    test = [i for i, e in enumerate(data['images']) if e['split'] == 'test']
    data['images'][test[1]]['filename'] = 'nowhere.png'
    ann = tmp_path / 'dataset.json'
    ann.write_text(json.dumps(data))
    with pytest.raises(ImageListError) as info:
        split_images(ann, 'test', demo_root / 'images')
    assert str(info.value).startswith(f'{ann}[images][{test[1]}]')
    assert f'image not found: {demo_root / "images" / "nowhere.png"}' in str(info.value)
    with pytest.raises(ImageListError, match="unknown split 'bogus'"):
        split_images(ann, 'bogus', demo_root / 'images')


# ------------------------------------------------------------------------ the command
def test_index_with_a_list_indexes_those_images_in_the_list_order(tmp_path, archive, tiny_demo_checkpoint, capsys):
    folder, names = archive
    chosen = [f'scenes/{n}' for n in (names[5], names[0], names[3])]
    list_file = _write(tmp_path / 'list.txt', *chosen, chosen[0])
    _index(tiny_demo_checkpoint, folder, tmp_path / 'index', '--list', list_file)
    out = capsys.readouterr().out
    assert ArchiveIndex(tmp_path / 'index').paths() == chosen
    assert f'note: 1 repeated entry of {list_file} indexed once' in out
    assert f'3 images listed in {list_file}: 0 already indexed, 3 to encode' in out
    # a longer list adds what is new; the index is shared with a scan of the folder
    _write(list_file, *chosen, f'scenes/{names[1]}')
    _index(tiny_demo_checkpoint, folder, tmp_path / 'index', '--list', list_file)
    assert f'4 images listed in {list_file}: 3 already indexed, 1 to encode' in capsys.readouterr().out
    _write(list_file, chosen[0])
    _index(tiny_demo_checkpoint, folder, tmp_path / 'index', '--list', list_file)
    assert f'warning: 3 indexed images are not listed in {list_file} (kept' in capsys.readouterr().out


def test_an_interrupted_index_of_a_list_resumes_to_the_same_index(tmp_path, archive, tiny_demo_checkpoint, monkeypatch):
    folder, names = archive
    chosen = [f'scenes/{n}' for n in reversed(names[:9])]  # not the order of a folder scan
    list_file = _write(tmp_path / 'list.txt', *chosen)
    reference = tmp_path / 'reference'
    _index(tiny_demo_checkpoint, folder, reference, '--list', list_file, '--shard-size', 4, '--batch-size', 2)

    real = interrupt_embedding_after(monkeypatch, 3)
    index_dir = tmp_path / 'index'
    with pytest.raises(SystemExit) as info:
        _index(tiny_demo_checkpoint, folder, index_dir, '--list', list_file, '--shard-size', 4, '--batch-size', 2)
    assert info.value.code == 130 and ArchiveIndex(index_dir).paths() == chosen[:6]
    monkeypatch.setattr(rsretrieval.apis, 'iter_image_embeddings', real)
    _index(tiny_demo_checkpoint, folder, index_dir, '--list', list_file, '--shard-size', 4, '--batch-size', 2)
    resumed, full = ArchiveIndex(index_dir), ArchiveIndex(reference)
    assert resumed.paths() == full.paths() == chosen
    np.testing.assert_allclose(resumed.embeddings(), full.embeddings(), atol=1e-6)


def test_index_a_dataset_split(tmp_path, demo_root, tiny_demo_checkpoint, capsys):
    ann = demo_root / 'dataset_demo.json'
    _index(tiny_demo_checkpoint, demo_root / 'images', tmp_path / 'index', '--split-of', ann, '--split', 'val')
    expected = [r.filename for r in load_annotations(ann, 'val')]
    assert ArchiveIndex(tmp_path / 'index').paths() == expected
    assert f'{len(expected)} images in the val split of {ann}: 0 already indexed' in capsys.readouterr().out


def test_a_missing_listed_image_stops_index_before_the_model_loads(tmp_path, archive, tiny_demo_checkpoint, capsys):
    folder, names = archive
    list_file = _write(tmp_path / 'list.txt', f'scenes/{names[0]}', 'scenes/gone.png')
    ckpt, cli = tiny_demo_checkpoint
    code, err = _fails(capsys, ['index', CONFIG, str(ckpt), str(folder), str(tmp_path / 'index'), '--list',
                                str(list_file), *cli])  # fmt: skip
    assert code == 1 and err == f'rsretrieval-retrieve: error: {list_file}:2: image not found: {folder}/scenes/gone.png'
    assert not (tmp_path / 'index').exists()


@pytest.mark.parametrize(
    'extra, message',
    [
        (['--list', '{tmp}/nope.txt'], 'list file not found: {tmp}/nope.txt'),
        (['--split', 'test'], '--split goes with --split-of'),
        (['--ann-format', 'karpathy'], '--ann-format goes with --split-of'),
        (['--split-of', '{tmp}'], '--split-of needs --split'),
        (['--split-of', '{tmp}/nope.json', '--split', 'test'], 'annotation file not found: {tmp}/nope.json'),
    ],
)
def test_index_checks_the_selection_arguments_first(tmp_path, archive, tiny_demo_checkpoint, capsys, extra, message):
    folder, _ = archive
    ckpt, _ = tiny_demo_checkpoint
    argv = ['index', CONFIG, str(ckpt), str(folder), str(tmp_path / 'index'), *(a.format(tmp=tmp_path) for a in extra)]
    code, err = _fails(capsys, argv)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f'rsretrieval-retrieve: error: {message.format(tmp=tmp_path)}')


# -------------------------------------------------------------------- symbolic links
def test_index_indexes_a_link_out_of_the_folder_and_says_serve_will_not_show_it(
    tmp_path, archive, tiny_demo_checkpoint, capsys
):
    folder, names = archive
    outside = tmp_path / 'elsewhere.png'
    shutil.copy(folder / 'scenes' / names[0], outside)
    os.symlink(outside, folder / 'link.png')
    os.symlink(folder / 'scenes' / names[1], folder / 'inner_link.png')  # stays inside: no note
    assert links_leaving_root(folder, ['link.png', 'inner_link.png', f'scenes/{names[2]}']) == [
        ('link.png', str(outside))
    ]
    _index(tiny_demo_checkpoint, folder, tmp_path / 'index')
    out = capsys.readouterr().out
    assert f'note: 1 of the images to encode leads out of {folder} through a symbolic link (first: link.png -> ' in out
    assert 'only with --follow-symlinks' in out
    assert {'link.png', 'inner_link.png'} <= set(ArchiveIndex(tmp_path / 'index').paths())


def test_a_path_holding_a_control_character_is_shown_escaped(tmp_path, archive):
    folder, _ = archive
    list_file = tmp_path / 'list.txt'
    list_file.write_bytes(b'scenes/a\x00b.png\n')
    with pytest.raises(ImageListError) as info:
        listed_images(list_file, folder)
    assert str(info.value) == f"{list_file}:1: image not found: '{folder}/scenes/a\\x00b.png'"
