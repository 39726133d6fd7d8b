"""Indexing an archive that misbehaves: Ctrl-C, unreadable files, output redirected to a file, bad queries."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from conftest import REPO
from helpers import interrupt_embedding_after

import rsretrieval.apis
from rsretrieval.search import ArchiveIndex, find_images, unreadable_images
from rsretrieval.search.cli import main
from rsretrieval.search.commands import Progress
from rsretrieval.utils.progress import format_duration

CONFIG = str(REPO / 'configs' / 'cmpagl_demo.py')


@pytest.fixture
def archive(tmp_path, demo_root):
    """A copy of the demo images (small PNGs) in a sub-folder."""
    folder = tmp_path / 'archive'
    shutil.copytree(demo_root / 'images', folder / 'scenes')
    return folder


def _index(tiny_demo_checkpoint, archive, index_dir, *extra):
    ckpt, cli = tiny_demo_checkpoint
    main(['index', CONFIG, str(ckpt), str(archive), str(index_dir), '--device', 'cpu', *map(str, extra), *cli])


def _exit(tiny_demo_checkpoint, archive, index_dir, *extra) -> SystemExit:
    with pytest.raises(SystemExit) as info:
        _index(tiny_demo_checkpoint, archive, index_dir, *extra)
    return info.value


def _add_bad_files(archive):
    """Two unreadable files: a text file named .png (found from its header) and a truncated PNG
    (its header is fine, its pixels cannot be decoded)."""
    (archive / 'not_an_image.png').write_text('hello')
    source = sorted((archive / 'scenes').glob('*.png'))[0].read_bytes()
    (archive / 'scenes' / 'zz_truncated.png').write_bytes(source[: len(source) // 2])


# --------------------------------------------------------------------- interruption
def test_interrupted_index_saves_what_was_encoded_and_resumes_to_the_same_index(
    tmp_path, archive, tiny_demo_checkpoint, monkeypatch, capsys
):
    total = len(find_images(archive))
    reference = tmp_path / 'reference'
    _index(tiny_demo_checkpoint, archive, reference, '--shard-size', 5, '--batch-size', 2)

    real = interrupt_embedding_after(monkeypatch, 4)
    index_dir = tmp_path / 'index'
    capsys.readouterr()
    stop = _exit(tiny_demo_checkpoint, archive, index_dir, '--shard-size', 5, '--batch-size', 2)
    # a full shard (2 + 2 + 1 images) and the two images of the next shard's first batch
    assert stop.code == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ['interrupted: 7 images saved; rerun the same command to resume']
    partial = ArchiveIndex(index_dir)
    assert len(partial) == 7 and partial.paths() == ArchiveIndex(reference).paths()[:7]
    assert sorted(f.name for f in index_dir.iterdir() if f.suffix == '.npy') == ['shard_00000.npy', 'shard_00001.npy']

    monkeypatch.setattr(rsretrieval.apis, 'iter_image_embeddings', real)
    _index(tiny_demo_checkpoint, archive, index_dir, '--shard-size', 5, '--batch-size', 2)
    assert f'{total} images under {archive}: 7 already indexed, {total - 7} to encode' in capsys.readouterr().out
    resumed, full = ArchiveIndex(index_dir), ArchiveIndex(reference)
    assert resumed.paths() == full.paths()
    np.testing.assert_allclose(resumed.embeddings(), full.embeddings(), atol=1e-6)


def test_interruption_before_any_image_is_encoded_saves_nothing(tmp_path, archive, tiny_demo_checkpoint, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(rsretrieval.apis, 'iter_image_embeddings', interrupted)
    index_dir = tmp_path / 'index'
    assert _exit(tiny_demo_checkpoint, archive, index_dir).code == 130
    assert len(ArchiveIndex(index_dir)) == 0


# ------------------------------------------------------------------- unreadable files
def test_unreadable_images_header_check_and_decode_check(archive):
    _add_bad_files(archive)
    paths = find_images(archive)
    assert unreadable_images(archive, paths) == [('not_an_image.png', 'cannot identify image file')]
    problems = unreadable_images(archive, paths, decode=True)
    assert [p for p, _ in problems] == ['not_an_image.png', 'scenes/zz_truncated.png']
    assert 'truncated' in problems[1][1] and str(archive) not in problems[1][1]


def test_two_unreadable_files_are_both_reported_in_one_run(tmp_path, archive, tiny_demo_checkpoint):
    _add_bad_files(archive)
    index_dir = tmp_path / 'index'
    message = str(_exit(tiny_demo_checkpoint, archive, index_dir).code)
    lines = message.splitlines()
    assert lines[0].startswith(f'error: 2 unreadable image files under {archive}')
    assert 'nothing was encoded' in lines[0]
    assert lines[1] == '  not_an_image.png: cannot identify image file'
    assert lines[2].startswith('  scenes/zz_truncated.png: ') and 'truncated' in lines[2]
    assert '--skip-unreadable' in lines[-1]
    assert not index_dir.exists()  # stopped before loading the model


def test_a_file_found_unreadable_while_encoding_stops_the_run_after_the_others(tmp_path, archive, tiny_demo_checkpoint):
    _add_bad_files(archive)
    (archive / 'not_an_image.png').unlink()  # only the truncated file, whose header is fine, is left
    index_dir = tmp_path / 'index'
    message = str(_exit(tiny_demo_checkpoint, archive, index_dir, '--batch-size', 4).code)
    assert 'error: 1 unreadable image file' in message and 'scenes/zz_truncated.png: ' in message
    good = [p for p in find_images(archive) if 'truncated' not in p]
    assert f'the other {len(good)} new images are indexed' in message and ArchiveIndex(index_dir).paths() == good


def test_skip_unreadable_indexes_the_rest_and_lists_the_skipped(tmp_path, archive, tiny_demo_checkpoint, capsys):
    _add_bad_files(archive)
    index_dir = tmp_path / 'index'
    _index(tiny_demo_checkpoint, archive, index_dir, '--skip-unreadable', '--batch-size', 4)
    out = capsys.readouterr().out
    bad = ['not_an_image.png', 'scenes/zz_truncated.png']
    good = [p for p in find_images(archive) if p not in bad]
    index = ArchiveIndex(index_dir)
    assert index.paths() == good and len(index) == len(good)
    assert [s['path'] for s in index.skipped] == bad and all(s['reason'] for s in index.skipped)
    meta = json.loads((index_dir / 'meta.json').read_text())
    assert meta['skipped'][0] == dict(path='not_an_image.png', reason='cannot identify image file')
    assert f'skipped 2 unreadable image files (listed in {index_dir / "meta.json"}):' in out
    assert '  not_an_image.png: cannot identify image file' in out and '  scenes/zz_truncated.png: ' in out
    # fixed files are indexed by the next run, and leave the list
    for path in bad:
        (archive / path).unlink()
    _index(tiny_demo_checkpoint, archive, index_dir, '--skip-unreadable')
    assert ArchiveIndex(index_dir).skipped == [] and 'skipped' not in capsys.readouterr().out


# ------------------------------------------------------------------------- progress
def test_progress_off_a_terminal_writes_few_lines(tmp_path, archive, tiny_demo_checkpoint, capsys):
    total = len(find_images(archive))
    _index(tiny_demo_checkpoint, archive, tmp_path / 'index', '--batch-size', 1)  # a batch per image
    out = capsys.readouterr().out
    progress = [line for line in out.splitlines() if line.startswith('indexed ')]
    assert total > 10 and progress == [f'indexed {total}/{total} images, {progress[-1].split(", ")[1]}']
    assert '\r' not in out and '>' not in out


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_every_interval_and_at_the_end():
    stream, clock = io.StringIO(), _Clock()
    progress = Progress(704, 'indexed', done=64, every=30, stream=stream, clock=clock)
    for _ in range(640):
        clock.now += 0.125  # 8 images/s: a line every 240 images
        progress.update()
    progress.close()
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines == [
        'indexed 304/704 images, 30 s, ETA 50 s',
        'indexed 544/704 images, 60 s, ETA 20 s',
        'indexed 704/704 images, 80 s',
    ]


def test_progress_on_a_terminal_draws_the_bar():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = Progress(10, 'indexed', stream=stream, clock=_Clock())
    for _ in range(10):
        progress.update()
    progress.close()
    assert '10/10' in stream.getvalue() and '>' in stream.getvalue() and 'indexed' not in stream.getvalue()


def test_nothing_to_do_writes_no_progress():
    stream = io.StringIO()
    progress = Progress(5, 'indexed', done=5, stream=stream)
    progress.close()
    assert stream.getvalue() == ''


def test_format_duration():
    assert [format_duration(s) for s in (0.4, 41, 99, 100, 725, 10920)] == [
        '0 s',
        '41 s',
        '99 s',
        '1 min 40 s',
        '12 min 05 s',
        '3 h 02 min',
    ]


# -------------------------------------------------------------------------- queries
@pytest.mark.parametrize('queries', [[''], ['   '], ['a river', ' \t ']])
def test_empty_query_is_refused(tmp_path, capsys, queries):
    with pytest.raises(SystemExit) as info:
        main(['search', str(tmp_path / 'no_index'), *queries])
    assert info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and 'is empty: give a text to search for' in message
    assert ('query 2 of 2' if len(queries) == 2 else 'the query') in message


# --------------------------------------------------------------------- memory
def test_index_on_a_cpu_keeps_freed_memory_for_the_next_batch(tmp_path, archive, tiny_demo_checkpoint, monkeypatch):
    import rsretrieval.search.commands as commands

    calls = []
    monkeypatch.setattr(commands, 'keep_freed_cpu_memory', lambda: calls.append(1) or True)
    _index(tiny_demo_checkpoint, archive, tmp_path / 'index')
    assert calls == [1]


# --------------------------------------------------------------------- fast path
def test_index_decides_on_compiling_by_the_whole_run_not_by_one_shard(
    tmp_path, archive, tiny_demo_checkpoint, monkeypatch
):
    import rsretrieval.apis.inference as inference

    asked = []
    real = inference.build_image_encoder

    def recording(model, precision='fp32', fast='auto', num_images=None):
        asked.append(num_images)
        return real(model, precision, False, num_images)

    monkeypatch.setattr(inference, 'build_image_encoder', recording)
    _index(tiny_demo_checkpoint, archive, tmp_path / 'index', '--shard-size', 4)
    total = len(find_images(archive))
    # one encoder per shard, each told the run's size: with shards of 4096 images, fast='auto'
    # would otherwise never see a run long enough to compile for
    assert len(asked) == -(-total // 4) and set(asked) == {total}
