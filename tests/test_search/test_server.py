"""The search page's server (``rsretrieval-retrieve serve``): its JSON API, what it refuses, its images."""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from rsretrieval.search import ArchiveIndex
from rsretrieval.search import cli as search_cli
from rsretrieval.search import server as search_server
from rsretrieval.search.choices import ann_kind, is_loopback
from rsretrieval.search.cli import main

CONFIG = str(REPO / 'configs' / 'cmpagl_demo.py')
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


# ------------------------------------------------------------------ helpers (also used by the browser test)
def build_served_index(tmp_path_factory, demo_root: Path, tiny_demo_checkpoint) -> Path:
    """The demo images indexed with the tiny checkpoint by ``rsretrieval-retrieve index`` (once a session)."""
    folder = tmp_path_factory.getbasetemp() / 'served_index'
    if not list(folder.glob('shard_*.npy')):
        ckpt, cli = tiny_demo_checkpoint
        main(['index', CONFIG, str(ckpt), str(demo_root / 'images'), str(folder), '--device', 'cpu', *cli])
    return folder


@contextmanager
def serving(index_dir: Path, *args: str) -> Iterator[tuple[str, str, int]]:
    """``rsretrieval-retrieve serve INDEX_DIR ARGS`` as the command runs it, its app then served on a
    free loopback port from a thread: yields ``(base URL, --host, --port)``."""
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search_server, 'run_server', lambda app, host, port: calls.append((app, host, port)))
        main(['serve', str(index_dir), '--device', 'cpu', *args])
    app, host, port = calls[0]
    with search_server.running(app) as url:
        yield url, host, port


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """``(status, headers, body)`` of a GET, errors included."""
    try:
        with _DIRECT.open(urllib.request.Request(url, headers=headers or {}), timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def get_json(url: str) -> tuple[int, dict]:
    status, headers, body = get(url)
    assert headers['content-type'] == 'application/json', (url, headers)
    return status, json.loads(body)


def raw_get(base: str, target: str) -> tuple[int, bytes]:
    """A GET of ``target`` exactly as written (no client-side normalisation of ``..``)."""
    host, port = base.removeprefix('http://').rsplit(':', 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.putrequest('GET', target, skip_accept_encoding=True)
    conn.endheaders()
    response = conn.getresponse()
    status, body = response.status, response.read()
    conn.close()
    return status, body


# ---------------------------------------------------------------- the served demo index
@pytest.fixture(scope='module')
def served(tmp_path_factory, demo_root, tiny_demo_checkpoint):
    """``(base URL, index folder)`` of the demo index served as the command line serves it."""
    index_dir = build_served_index(tmp_path_factory, demo_root, tiny_demo_checkpoint)
    with serving(index_dir) as (url, host, port):
        assert (host, port) == ('127.0.0.1', 8000), 'serve listens on loopback port 8000 by default'
        yield url, index_dir


def test_search_api_answers_the_index_ranking(served, tiny_demo_checkpoint):
    import argparse

    from mmengine.config import DictAction

    from rsretrieval.apis import embed_texts, init_model

    url, index_dir = served
    query = 'three red planes at the top left of farmland'
    status, answer = get_json(f'{url}/api/search?q={urllib.request.quote(query)}&k=5')
    assert status == 200 and answer['query'] == query and answer['k'] == 5
    index = ArchiveIndex(index_dir)
    paths = index.paths()
    assert answer['images'] == len(paths)
    hits = answer['results']
    assert [h['rank'] for h in hits] == [1, 2, 3, 4, 5]
    assert [h['path'] for h in hits] == [paths[h['id']] for h in hits]
    assert all(h['name'] == Path(h['path']).name and h['thumbnail'] == f'/thumb/{h["id"]}' for h in hits)
    # the scores and the order are those of the model on the index
    ckpt, cli = tiny_demo_checkpoint
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    model = init_model(CONFIG, ckpt, cfg_options=parser.parse_args(cli).cfg_options, quiet=True)
    scores, ids = index.search(embed_texts(model, [query]), 5, 'exact')
    assert [h['id'] for h in hits] == ids[0].tolist()
    assert [h['score'] for h in hits] == pytest.approx(scores[0].tolist(), abs=1e-5)
    # k beyond the index size: every image, once
    status, answer = get_json(f'{url}/api/search?q=river&k=100')
    assert status == 200 and sorted(h['id'] for h in answer['results']) == list(range(len(paths)))


@pytest.mark.parametrize(
    'params, reason',
    [
        ('', 'the query is empty'),
        ('q=', 'the query is empty'),
        ('q=+%20%09', 'the query is empty'),
        ('q=' + 'a' * 501, 'the query is 501 characters long; the limit is 500'),
        ('q=' + '%C3%A9' * 501, 'the query is 501 characters long'),  # characters, not bytes
        ('q=%FF%FEriver', 'not valid UTF-8'),
        ('q=caf%C3', 'not valid UTF-8'),
        ('q=river&k=0', "k must be a whole number from 1 to 100, got '0'"),
        ('q=river&k=101', "got '101'"),
        ('q=river&k=-1', "got '-1'"),
        ('q=river&k=2.5', "got '2.5'"),
        ('q=river&k=ten', "got 'ten'"),
        ('q=river&k=', "got ''"),
        ('q=river&k=%D9%A3', 'k must be a whole number'),  # an Arabic-Indic digit
    ],
)
def test_search_api_refuses_bad_requests_with_a_clear_400(served, params, reason):
    url, _ = served
    status, answer = get_json(f'{url}/api/search?{params}')
    assert status == 400 and reason in answer['detail'], answer


def test_search_api_accepts_the_longest_query_and_any_language(served):
    url, _ = served
    for query in ('a' * 500, 'café près du pont', '河流上的桥'):
        status, answer = get_json(f'{url}/api/search?q={urllib.request.quote(query)}&k=1')
        assert status == 200 and answer['query'] == query and len(answer['results']) == 1


def test_images_are_served_by_their_id_in_the_index_only(served):
    url, index_dir = served
    index = ArchiveIndex(index_dir)
    n = len(index.paths())
    status, headers, body = get(f'{url}/thumb/0')
    assert status == 200 and headers['content-type'] == 'image/jpeg'
    with Image.open(io.BytesIO(body)) as thumb:
        assert thumb.format == 'JPEG' and max(thumb.size) <= search_server.THUMB_SIZE
    status, headers, body = get(f'{url}/image/{n - 1}')
    assert status == 200 and headers['content-type'] == 'image/png'
    assert body == Path(index.absolute_path(index.paths()[n - 1])).read_bytes()
    for target in (f'/image/{n}', f'/thumb/{n}', '/image/-1', '/image/abc', '/image/%D9%A3', '/image/0x1'):
        status, answer = get_json(url + target)
        assert status == 404 and 'no image' in answer['detail'], (target, answer)
    for target in (
        '/image/../../etc/passwd',
        '/image/..%2F..%2Fetc%2Fpasswd',
        '/thumb/%2Fetc%2Fpasswd',
        '/static/../../../../etc/passwd',
        '/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd',
        '/static/%2Fetc%2Fpasswd',
        '/../../../../etc/passwd',
        '/etc/passwd',
        '/openapi.json',
        '/docs',
    ):
        status, body = raw_get(url, target)
        assert status in (400, 404) and b'root:' not in body, (target, status, body[:200])


def test_page_assets_and_security_headers(served):
    url, _ = served
    status, headers, body = get(url + '/')
    assert status == 200 and headers['content-type'].startswith('text/html') and b'id="q"' in body
    assert "default-src 'none'" in headers['content-security-policy'] and headers['x-content-type-options'] == 'nosniff'
    for asset in ('search.js', 'search.css'):
        assert get(f'{url}/static/{asset}')[0] == 200
    status, info = get_json(url + '/api/info')
    assert status == 200 and info['max_k'] == 100 and info['max_query_chars'] == 500 and info['backend'] == 'exact'


def test_another_host_name_is_refused_on_loopback(served):
    url, _ = served
    assert get(url + '/api/info', headers={'Host': 'attacker.example'})[0] == 400  # DNS rebinding
    assert get(url + '/api/info', headers={'Host': f'localhost:{url.rsplit(":", 1)[1]}'})[0] == 200


# ------------------------------------------------------------- an index made by hand, a slow encoder
@pytest.fixture
def handmade(tmp_path):
    """An index of two images of an archive (a PNG and a TIFF) and a path recorded outside it."""
    archive = tmp_path / 'archive'
    archive.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(archive / 'a.png')
    Image.fromarray(rng.integers(0, 255, (50, 30, 3), dtype=np.uint8)).save(archive / 'b.tif')
    (tmp_path / 'secret.png').write_bytes((archive / 'a.png').read_bytes())
    index = ArchiveIndex.create(tmp_path / 'index', archive, 8, dict(checkpoint_sha256='x'))
    emb = rng.normal(size=(3, 8)).astype(np.float32)
    index.add(['a.png', 'b.tif', '../secret.png'], emb / np.linalg.norm(emb, axis=1, keepdims=True))
    return index


def _encoder(delay: float = 0.0):
    def encode(texts: list[str]) -> np.ndarray:
        time.sleep(delay)
        return np.ones((len(texts), 8), np.float32) / np.sqrt(8)

    return encode


def test_a_tiff_is_served_as_png_and_a_path_outside_the_image_root_is_refused(handmade):
    searcher = search_server.Searcher(handmade, _encoder())
    with pytest.raises(LookupError, match='outside the image root'):
        searcher.image_file('2')
    with search_server.running(search_server.create_app(searcher)) as url:
        status, headers, body = get(f'{url}/image/1')
        assert status == 200 and headers['content-type'] == 'image/png'
        with Image.open(io.BytesIO(body)) as image:
            assert image.format == 'PNG' and image.size == (30, 50)
        status, answer = get_json(f'{url}/image/2')
        assert status == 404 and 'outside the image root' in answer['detail']
        (handmade.folder.parent / 'archive' / 'a.png').unlink()
        status, answer = get_json(f'{url}/image/0')
        assert status == 404 and 'is gone' in answer['detail']


def test_a_slow_query_does_not_hold_up_other_requests(handmade):
    searcher = search_server.Searcher(handmade, _encoder(delay=1.0))
    with search_server.running(search_server.create_app(searcher)) as url:
        answers = []

        def search(query: str) -> None:
            answers.append(get_json(f'{url}/api/search?q={query}&k=2'))

        threads = [threading.Thread(target=search, args=(q,)) for q in ('one', 'two')]
        for thread in threads:
            thread.start()
        time.sleep(0.2)  # both searches are in the encoder now (one of them waiting for the lock)
        assert get(f'{url}/thumb/1')[0] == 200 and get(f'{url}/api/info')[0] == 200
        assert not answers, 'the thumbnail and the info waited for the searches'
        for thread in threads:
            thread.join(30)
    assert [status for status, _ in answers] == [200, 200]
    assert all(len(answer['results']) == 2 for _, answer in answers)


# ------------------------------------------------------------------------- the command line
@pytest.mark.parametrize(
    'args, message',
    [
        (['serve', '{missing}'], 'index not found'),
        (['serve', '{tmp}'], 'is not an rsretrieval index'),
        (['serve', '{tmp}', '--port', '70000'], '--port must be from 0 to 65535'),
        (['serve', '{tmp}', '--host', ' '], '--host is empty'),
    ],
)
def test_serve_checks_its_arguments_before_loading_anything(tmp_path, capsys, args, message):
    args = [a.format(missing=tmp_path / 'nope', tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_serve_names_the_extra_to_install_when_fastapi_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(search_cli, 'missing_serve_modules', lambda: ['fastapi'])
    with pytest.raises(SystemExit):
        main(['serve', str(tmp_path)])
    assert 'serve needs fastapi, from the serve extra: pip install -e ".[serve]"' in capsys.readouterr().err


def test_loopback_hosts():
    assert is_loopback('127.0.0.1') and is_loopback('localhost')
    assert is_loopback('::1') and is_loopback('127.0.0.2')
    assert not is_loopback('0.0.0.0') and not is_loopback('192.168.1.4')
    assert search_server.allowed_hosts_for('0.0.0.0') is None
    assert set(search_server.allowed_hosts_for('127.0.0.1')) == {'localhost', '127.0.0.1', '[::1]'}


def test_ann_auto_builds_hnsw_from_the_threshold_only():
    from rsretrieval.search.choices import ANN_AUTO_THRESHOLD

    assert ann_kind('auto', ANN_AUTO_THRESHOLD - 1) == 'none'
    assert ann_kind('auto', ANN_AUTO_THRESHOLD) == 'hnsw'
    assert ann_kind('flat', 10) == 'flat'
