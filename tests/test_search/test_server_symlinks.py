"""The search server and symbolic links: a recorded image whose real path leads out of the image
root is not served (404) unless ``serve --follow-symlinks``; and queries with control characters get 400."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image
from test_server import build_served_index, get, get_json, serving

from rsretrieval.search import ArchiveIndex
from rsretrieval.search import server as search_server


def _encode(texts: list[str]) -> np.ndarray:
    return np.ones((len(texts), 8), np.float32) / np.sqrt(8)


@pytest.fixture
def linked(tmp_path):
    """An index of an archive holding a real image, a link to an image inside the archive, a link to a
    file outside it, and a linked folder outside it: ``(index, the outside file)``."""
    archive, outside = tmp_path / 'archive', tmp_path / 'outside'
    (archive / 'scenes').mkdir(parents=True)
    outside.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(archive / 'scenes' / 'real.png')
    Image.fromarray(rng.integers(0, 255, (30, 20, 3), dtype=np.uint8)).save(outside / 'private.png')
    os.symlink(archive / 'scenes' / 'real.png', archive / 'inner_link.png')
    os.symlink(outside / 'private.png', archive / 'leaving_link.png')
    os.symlink(outside, archive / 'linked_folder', target_is_directory=True)
    index = ArchiveIndex.create(tmp_path / 'index', archive, 8, dict(checkpoint_sha256='x'))
    emb = rng.normal(size=(4, 8)).astype(np.float32)
    paths = ['scenes/real.png', 'inner_link.png', 'leaving_link.png', 'linked_folder/private.png']
    index.add(paths, emb / np.linalg.norm(emb, axis=1, keepdims=True))
    return index, outside / 'private.png'


def test_links_out_of_the_image_root_are_not_served(linked):
    index, private = linked
    searcher = search_server.Searcher(index, _encode)
    assert searcher.image_file('1') == searcher.image_file('0')  # a link inside the root: served, as its target
    for image_id in ('2', '3'):
        with pytest.raises(LookupError, match='symbolic link leading out of the image root'):
            searcher.image_file(image_id)
    with search_server.running(search_server.create_app(searcher)) as url:
        for image_id in ('0', '1'):
            assert get(f'{url}/image/{image_id}')[0] == 200 and get(f'{url}/thumb/{image_id}')[0] == 200
        for image_id in ('2', '3'):
            for kind in ('image', 'thumb'):
                status, answer = get_json(f'{url}/{kind}/{image_id}')
                assert status == 404, (kind, image_id, answer)
                assert 'symbolic link leading out of the image root: not served' in answer['detail']
                assert '--follow-symlinks' in answer['detail'] and str(private) not in answer['detail']


def test_follow_symlinks_serves_them(linked):
    index, private = linked
    searcher = search_server.Searcher(index, _encode, follow_symlinks=True)
    assert searcher.image_file('2') == private
    with search_server.running(search_server.create_app(searcher)) as url:
        for image_id in ('2', '3'):
            status, headers, body = get(f'{url}/image/{image_id}')
            assert status == 200 and body == private.read_bytes()
    # a path recorded with ../ is refused all the same: the flag is about links only
    index.add(['../outside/private.png'], np.ones((1, 8), np.float32) / np.sqrt(8))
    with pytest.raises(LookupError, match='recorded outside the image root'):
        search_server.Searcher(index, _encode, follow_symlinks=True).image_file('4')


def test_a_link_swapped_after_indexing_is_checked_when_served(linked):
    index, private = linked
    searcher = search_server.Searcher(index, _encode)
    link = searcher.root / 'inner_link.png'
    assert searcher.image_file('1') == searcher.real_root / 'scenes' / 'real.png'
    link.unlink()
    os.symlink(private, link)
    with pytest.raises(LookupError, match='symbolic link leading out'):
        searcher.image_file('1')


# ----------------------------------------------------------------------- the command
@pytest.fixture
def linked_index(tmp_path, tmp_path_factory, demo_root, tiny_demo_checkpoint):
    """An index of the tiny model over an archive of one image and a link out of it:
    ``(index folder, the outside file)``."""
    model = ArchiveIndex(build_served_index(tmp_path_factory, demo_root, tiny_demo_checkpoint)).meta['model']
    archive = tmp_path / 'archive'
    archive.mkdir()
    Image.new('RGB', (20, 20), 'blue').save(archive / 'real.png')
    outside = tmp_path / 'private.png'
    Image.new('RGB', (20, 20), 'red').save(outside)
    os.symlink(outside, archive / 'link.png')
    index = ArchiveIndex.create(tmp_path / 'index', archive, 16, model)
    emb = np.random.default_rng(0).normal(size=(2, 16)).astype(np.float32)
    index.add(['real.png', 'link.png'], emb / np.linalg.norm(emb, axis=1, keepdims=True))
    return index.folder, outside


def test_serve_refuses_the_link_and_serves_it_with_the_flag(linked_index):
    folder, outside = linked_index
    with serving(folder) as (url, _, _):
        assert get(f'{url}/image/0')[0] == 200
        status, answer = get_json(f'{url}/image/1')
        assert status == 404 and 'symbolic link' in answer['detail']
    with serving(folder, '--follow-symlinks') as (url, _, _):
        status, _, body = get(f'{url}/image/1')
        assert status == 200 and body == outside.read_bytes()


# ------------------------------------------------------------------ control characters
@pytest.mark.parametrize(
    'params, reason',
    [
        ('q=%00', '(U+0000, NUL) at character 1'),
        ('q=river%00', '(U+0000, NUL) at character 6'),
        ('q=%1B%5B31mred', '(U+001B, ESC) at character 1'),
        ('q=boats%7F', '(U+007F, DEL) at character 6'),
        ('q=river%C2%85', '(U+0085) at character 6'),
        ('q=two%0Alines', '(U+000A, a line break) at character 4'),
        ('q=%1F', '(U+001F) at character 1'),
    ],
)
def test_a_query_with_a_control_character_gets_400(tmp_path, linked, params, reason):
    index, _ = linked
    with search_server.running(search_server.create_app(search_server.Searcher(index, _encode))) as url:
        status, answer = get_json(f'{url}/api/search?{params}&k=2')
        assert status == 400 and answer['detail'] == (
            f'the query contains a control character {reason}; queries are plain text'
        )
        status, answer = get_json(f'{url}/api/search?q=a%09river&k=2')  # a tab is white space, as in the page
        assert status == 200 and answer['query'] == 'a\triver'
