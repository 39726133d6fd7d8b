"""The search server under load: the bounded line of queries (503 + Retry-After) and slow clients."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from email.message import Message

import numpy as np
import pytest
from PIL import Image

from rsretrieval.search import ArchiveIndex
from rsretrieval.search import server as search_server
from rsretrieval.search.admission import Abandoned, AdmissionQueue, QueueFull

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
BIG_IMAGE_BYTES = 8 << 20  # far more than the loopback socket buffers hold


def get(url: str, timeout: float = 30) -> tuple[int, Message, bytes]:
    """``(status, headers (any case), body)`` of a GET, errors included."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


class BlockingEncoder:
    """A text encoder that holds every query until :meth:`release`, recording what it encoded;
    as a context manager, released at the end of the block (a failing test does not hang)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)
        self.texts: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        self.started.release()
        assert self.gate.wait(30), 'the test never released the encoder'
        return np.ones((len(texts), 8), np.float32) / np.sqrt(8)

    def release(self) -> None:
        self.gate.set()

    def __enter__(self) -> BlockingEncoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


@pytest.fixture
def index(tmp_path) -> ArchiveIndex:
    """Two images: a small PNG and a large file (served as it is, never decoded)."""
    archive = tmp_path / 'archive'
    archive.mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(archive / 'small.png')
    (archive / 'big.png').write_bytes(np.random.default_rng(0).bytes(BIG_IMAGE_BYTES))
    index = ArchiveIndex.create(tmp_path / 'index', archive, 8, dict(checkpoint_sha256='x'))
    emb = np.eye(2, 8, dtype=np.float32)
    index.add(['small.png', 'big.png'], emb)
    return index


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.01)


def _raw_connection(url: str, receive_buffer: int | None = None) -> socket.socket:
    """A socket connected to the server at ``url``, with a receive buffer of that size if given
    (set before connecting, so that it bounds the TCP window)."""
    host, port = url.removeprefix('http://').rsplit(':', 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    return sock


# ---------------------------------------------------------------------------- the line itself
def test_admission_queue_holds_at_most_max_queue_plus_one_and_serves_in_order():
    queue = AdmissionQueue(max_queue=2)
    places = [queue.admit() for _ in range(3)]
    with pytest.raises(QueueFull) as full:
        queue.admit()
    assert full.value.retry_after == 1 and full.value.held == 3  # nothing measured yet: at least 1 s
    order = []

    def serve(n: int) -> None:
        with places[n], places[n].turn():
            order.append(n)

    threads = []
    for n in range(3):  # started one after the other: each is in line before the next
        threads.append(threading.Thread(target=serve, args=(n,)))
        threads[-1].start()
        _wait_for(lambda n=n: queue.waiting + len(order) == n + 1)
    for thread in threads:
        thread.join(10)
    assert order == [0, 1, 2] and queue.held == 0 and queue.peak_held == 3
    queue.admit().leave()  # a place is free again


def test_retry_after_is_the_measured_service_time_times_the_places_held():
    queue = AdmissionQueue(max_queue=3)
    with queue.admit() as place, place.turn():
        time.sleep(0.3)
    assert 0.3 <= queue.service_s < 1.0
    for _ in range(4):
        queue.admit()
    with pytest.raises(QueueFull) as full:
        queue.admit()
    assert full.value.retry_after == int(np.ceil(queue.service_s * 4)) >= 2


def test_an_abandoned_place_gives_its_turn_up_unserved():
    queue = AdmissionQueue(max_queue=1)
    ran = []
    with queue.admit() as place, pytest.raises(Abandoned), place.turn(abandoned=lambda: True):
        ran.append(1)
    assert not ran and queue.held == 0
    with queue.admit() as place, place.turn():  # the worker is free for the next one
        ran.append(2)
    assert ran == [2]
    with pytest.raises(ValueError, match='0 or more'):
        AdmissionQueue(-1)


# ---------------------------------------------------------------------------- over HTTP
def test_queries_beyond_the_line_get_503_with_retry_after_and_the_queued_ones_complete(index):
    encoder = BlockingEncoder()
    app = search_server.create_app(search_server.Searcher(index, encoder), max_queue=2)
    admission = app.state.admission
    with search_server.running(app) as url, encoder:
        answers = {}

        def search(n: int) -> None:
            answers[n] = get(f'{url}/api/search?q=query{n}&k=1')

        threads = [threading.Thread(target=search, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        _wait_for(lambda: admission.held == 3)  # one in the encoder, two waiting
        for _ in range(3):
            status, headers, body = get(f'{url}/api/search?q=more&k=1')
            assert status == 503 and int(headers['Retry-After']) >= 1, (status, headers)
            assert 'the server is busy' in json.loads(body)['detail']
            assert admission.held == 3  # the bound holds
        # images and the info do not wait for the line
        assert get(f'{url}/thumb/0', timeout=5)[0] == 200 and get(f'{url}/api/info', timeout=5)[0] == 200
        encoder.release()
        for thread in threads:
            thread.join(30)
        assert [answers[n][0] for n in range(3)] == [200, 200, 200]
        assert sorted(encoder.texts) == ['query0', 'query1', 'query2']  # the refused ones never reached it
        assert admission.held == 0 and admission.peak_held == 3
        status, _, body = get(f'{url}/api/info')
        assert json.loads(body)['max_queue'] == 2


def test_a_query_whose_client_left_while_it_waited_is_not_encoded(index):
    encoder = BlockingEncoder()
    app = search_server.create_app(search_server.Searcher(index, encoder), max_queue=4)
    admission = app.state.admission
    with search_server.running(app) as url, encoder:
        first = threading.Thread(target=get, args=(f'{url}/api/search?q=first&k=1',))
        first.start()
        assert encoder.started.acquire(timeout=10)
        gone = _raw_connection(url)
        gone.sendall(b'GET /api/search?q=gone&k=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
        _wait_for(lambda: admission.held == 2)
        gone.close()
        time.sleep(0.2)  # the server sees the connection closed
        encoder.release()
        first.join(30)
        _wait_for(lambda: admission.held == 0)
        assert encoder.texts == ['first']


def test_stalled_clients_do_not_hold_up_another_clients_query_and_are_cut_off(index):
    app = search_server.create_app(search_server.Searcher(index, lambda texts: np.eye(len(texts), 8, dtype='f4')))
    with search_server.running(app, request_timeout=1.0, write_timeout=1.0) as url:
        silent = _raw_connection(url)  # connects, sends nothing
        half = _raw_connection(url)
        half.sendall(b'GET /api/search?q=half')  # half a request line, then nothing
        unread = _raw_connection(url, receive_buffer=4096)
        unread.sendall(b'GET /image/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')  # 8 MiB, never read
        time.sleep(0.2)
        start = time.monotonic()
        status, _, body = get(f'{url}/api/search?q=river&k=2', timeout=5)
        assert status == 200 and len(json.loads(body)['results']) == 2
        assert time.monotonic() - start < 2, 'the query waited for the stalled clients'
        # past the deadlines the server has closed all three
        time.sleep(1.5)
        for sock in (silent, half):
            assert sock.recv(1024) == b''
        received = 0
        with contextlib.suppress(ConnectionResetError):  # or the end of what the kernel had sent
            while chunk := unread.recv(1 << 16):
                received += len(chunk)
        assert received < BIG_IMAGE_BYTES, 'the unread response was not dropped'
        for sock in (silent, half, unread):
            sock.close()


def test_a_client_that_reads_slowly_but_steadily_gets_the_whole_image(index):
    app = search_server.create_app(search_server.Searcher(index, lambda texts: np.eye(len(texts), 8, dtype='f4')))
    with search_server.running(app, write_timeout=0.5) as url:
        status, _, body = get(f'{url}/image/1')  # a fast reader, for the length
        assert status == 200 and len(body) == BIG_IMAGE_BYTES
        slow = _raw_connection(url, receive_buffer=1 << 20)
        slow.sendall(b'GET /image/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
        received = 0
        start = time.monotonic()
        while chunk := slow.recv(1 << 20):
            received += len(chunk)
            if time.monotonic() - start < 1.5:
                time.sleep(0.2)  # well inside the deadline each time
        slow.close()
        assert received > BIG_IMAGE_BYTES


# ---------------------------------------------------------------------------- the command line
def test_serve_max_queue_sets_the_line_and_refuses_a_negative_length(
    tmp_path, tmp_path_factory, demo_root, tiny_demo_checkpoint, capsys
):
    from test_server import build_served_index, serving

    from rsretrieval.search.cli import main

    with pytest.raises(SystemExit) as info:
        main(['serve', str(tmp_path), '--max-queue', '-1'])
    assert info.value.code == 2
    assert "--max-queue: must be a whole number, 0 or more, got '-1'" in capsys.readouterr().err
    index_dir = build_served_index(tmp_path_factory, demo_root, tiny_demo_checkpoint)
    with serving(index_dir, '--max-queue', '3') as (url, _, _):
        status, _, body = get(f'{url}/api/info')
        assert status == 200 and json.loads(body)['max_queue'] == 3
        status, _, body = get(f'{url}/api/search?q=a+river&k=2')
        assert status == 200 and len(json.loads(body)['results']) == 2
