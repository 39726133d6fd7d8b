"""A search page and its JSON API over an archive index (``rsretrieval-retrieve serve``).

FastAPI and uvicorn, from the ``serve`` extra (``pip install -e .[serve]``)::

    GET /                          the page; /?q=...&k=... runs that search (a URL to share)
    GET /api/search?q=...&k=...    the top k images for a text, as JSON
    GET /api/info                  the index: images, embedding width, search backend, limits
    GET /thumb/{id}                a JPEG thumbnail of image ``id`` (its position in the index)
    GET /image/{id}                the full image (as PNG when a browser cannot show its format)

Safety:

- images are addressed by their position in the index, never by a path from the
  request, and a path recorded in the index that leads out of its image root, by
  its name (``../``) or through a symbolic link (its real path), is refused: only
  files of the index are served (``follow_symlinks`` lets links out of the root be served);
- an empty query, one over :data:`MAX_QUERY_CHARS` characters, one holding a
  control character or not UTF-8, and a ``k`` outside 1 to :data:`MAX_K` get
  ``400 {"detail": "<reason>"}``; an unknown image id gets ``404``;
- the model loads once, before the server starts; queries are searched one at a
  time (tokenisers are not thread-safe, and the model and the index search each
  use every core) behind a bounded line (:mod:`.admission`): at most
  ``max_queue`` queries wait while one is searched, and a query beyond gets
  ``503`` with ``Retry-After`` (seconds for the line to drain) rather than piling
  up; a query whose client left while it waited is not searched;
- queries wait in threads of their own (as many as the line holds) and are
  searched on one more; images and thumbnails use FastAPI's thread pool: a burst
  of queries cannot take the threads that images need, nor images those of queries;
- slow clients are cut off (:mod:`.slow_clients`): a request head must arrive
  within :data:`~.slow_clients.REQUEST_TIMEOUT_S` seconds, a response left unread
  is dropped after :data:`~.slow_clients.WRITE_TIMEOUT_S` seconds, an idle
  keep-alive connection is closed after :data:`KEEP_ALIVE_S` seconds;
- on a loopback address (the default) only ``Host: localhost`` or the loopback
  address itself is answered, so that a web page elsewhere cannot reach the
  server by DNS rebinding; pages carry a strict Content-Security-Policy.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import anyio
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.datastructures import MutableHeaders
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rsretrieval.datasets.transforms import read_rgb

from .admission import Abandoned, AdmissionQueue, Place, QueueFull
from .archive_index import ArchiveIndex, ArchiveIndexError
from .choices import is_loopback
from .queries import QueryError, is_blank, text_problem

if TYPE_CHECKING:
    from rsretrieval.models.retrievers import BaseRetriever

MAX_QUERY_CHARS = 500  # characters of a query (the text encoder reads far fewer tokens)
MAX_K = 100  # results of one query
DEFAULT_K = 10
THUMB_SIZE = 256  # pixels, the longer side of a thumbnail
THUMB_CACHE = 2048  # thumbnails kept in memory (a few kB each)
DEFAULT_MAX_QUEUE = 16  # queries waiting for their search; see create_app
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this (uvicorn's default)
BROWSER_FORMATS = {'.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png'}  # served as they are
STATIC = Path(__file__).with_name('static')
SECURITY_HEADERS = {
    'Content-Security-Policy': (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
}

Encoder = Callable[[list[str]], Any]  # texts -> (len(texts), E) numpy array or torch tensor


# ------------------------------------------------------------------ requests
def query_params(raw: bytes) -> dict[str, str]:
    """The first value of each parameter of a raw query string, percent-decoded as UTF-8.

    Starlette would replace bytes that are not UTF-8 with U+FFFD and search for
    that; here they are an error.

    Raises:
        QueryError: A name or a value is not UTF-8 once percent-decoded.
    """
    params: dict[str, str] = {}
    for field in raw.split(b'&'):
        if not field:
            continue
        name, _, value = field.partition(b'=')
        try:
            name_text, value_text = (unquote_to_bytes(part.replace(b'+', b' ')).decode() for part in (name, value))
        except UnicodeDecodeError:
            raise QueryError(
                'the query string is not valid UTF-8: percent-encode the text as UTF-8 '
                '(as browsers and encodeURIComponent do)'
            ) from None
        params.setdefault(name_text, value_text)
    return params


def search_request(params: dict[str, str]) -> tuple[str, int]:
    """``(query, k)`` of an ``/api/search`` request.

    Raises:
        QueryError: The query is empty or blank, holds a control character, or is longer
            than :data:`MAX_QUERY_CHARS`; ``k`` is not a whole number from 1 to :data:`MAX_K`.
    """
    query = params.get('q', '')
    if is_blank(query):
        raise QueryError('the query is empty: give a text to search for, e.g. /api/search?q=a+bridge+over+a+river')
    if problem := text_problem(query):
        raise QueryError(f'the query {problem}')
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f'the query is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS}')
    k = params.get('k', str(DEFAULT_K))
    if not (k.isascii() and k.isdigit() and 1 <= int(k) <= MAX_K):
        raise QueryError(f'k must be a whole number from 1 to {MAX_K}, got {k[:20]!r}')
    return query, int(k)


# -------------------------------------------------------------------- search
class Searcher:
    """An index and a text encoder, loaded once and searched from many threads.

    Args:
        index: The archive index (its embeddings are read now).
        encode: Texts to ``(len(texts), E)`` L2-normalised embeddings (a numpy
            array or a torch tensor). It is called under a lock: tokenisers and
            some models are not safe to call from two threads at once.
        backend: ``'exact'``, ``'faiss'`` (the index's ``ann.faiss``, read once
            here) or ``'auto'`` (faiss when the index has one).
        follow_symlinks: Serve an indexed image that is a symbolic link (or lies
            under one) leading out of the image root; by default it is refused,
            so that a link in an archive cannot expose a file elsewhere.

    Raises:
        ArchiveIndexError: The index is empty, or ``ann.faiss`` is missing
            (``'faiss'``) or does not cover the shards.
    """

    def __init__(
        self, index: ArchiveIndex, encode: Encoder, backend: str = 'auto', follow_symlinks: bool = False
    ) -> None:
        self.index = index
        self.paths = index.paths()
        if not self.paths:
            raise ArchiveIndexError(f'{index.folder} holds no image')
        self.root = Path(os.path.normpath(index.meta['image_root']))
        self.real_root = Path(os.path.realpath(self.root))
        self.follow_symlinks = follow_symlinks
        self._encode = encode
        self._lock = threading.Lock()
        if index.prepare(backend) != len(self.paths):  # read now rather than on the first query
            raise ArchiveIndexError(f'{index.folder}: the shards hold a different number of paths and embeddings')
        self.backend = index.search_backend(backend)
        if self.backend == 'faiss':
            index.ann()  # read now rather than on the first query

    def __len__(self) -> int:
        return len(self.paths)

    def embed(self, query: str) -> np.ndarray:
        """The ``(1, E)`` float32 embedding of ``query``."""
        with self._lock:
            emb = self._encode([query])
        if hasattr(emb, 'detach'):
            emb = emb.detach().cpu().numpy()
        return np.ascontiguousarray(emb, dtype=np.float32)

    def search(self, query: str, k: int) -> list[dict]:
        """The ``k`` best images for ``query`` (fewer when the index is smaller), best first.

        Returns:
            One dict per image: ``rank`` (from 1), ``id`` (position in the
            index), ``score`` (cosine), ``name`` (file name) and ``path``
            (relative to the image root).
        """
        scores, ids = self.index.search(self.embed(query), k, self.backend)
        found = [(float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0]  # faiss pads with -1
        return [
            dict(rank=r, id=i, score=s, name=PurePosixPath(self.paths[i]).name, path=self.paths[i])
            for r, (s, i) in enumerate(found, 1)
        ]

    def image_file(self, image_id: str) -> Path:
        """The file of image ``image_id`` (its position in the index, in decimal digits), symbolic
        links resolved: what is opened is what was checked.

        Raises:
            LookupError: No such image, or its recorded path leads out of the image root
                (by its name, or through a symbolic link unless ``follow_symlinks``).
        """
        if not (image_id.isascii() and image_id.isdigit()) or int(image_id) >= len(self):
            raise LookupError(f'no image {image_id[:20]!r} in the index: ids are 0 to {len(self) - 1}')
        relative = self.paths[int(image_id)]
        full = Path(os.path.normpath(self.root / relative))
        if not full.is_relative_to(self.root):
            raise LookupError(f'image {image_id} is recorded outside the image root: not served')
        real = Path(os.path.realpath(full))
        if not self.follow_symlinks and not real.is_relative_to(self.real_root):
            raise LookupError(
                f'image {image_id} is a symbolic link leading out of the image root: not served '
                '(serve --follow-symlinks serves such links)'
            )
        return real


# -------------------------------------------------------------------- images
def thumbnail_jpeg(path: Path, size: int = THUMB_SIZE) -> bytes:
    """A JPEG of the image at ``path``, its longer side at most ``size`` pixels."""
    image = Image.fromarray(read_rgb(str(path)))
    image.thumbnail((size, size))
    buf = io.BytesIO()
    image.save(buf, format='JPEG', quality=85)
    return buf.getvalue()


def full_image(path: Path) -> Response:
    """The file as it is when a browser shows its format (JPEG, PNG), otherwise as PNG."""
    media_type = BROWSER_FORMATS.get(path.suffix.lower())
    if media_type is not None:
        return FileResponse(path, media_type=media_type)
    buf = io.BytesIO()
    Image.fromarray(read_rgb(str(path))).save(buf, format='PNG')
    return Response(buf.getvalue(), media_type='image/png')


def _image_or_error(searcher: Searcher, image_id: str, make: Callable[[Path], object]):
    try:
        path = searcher.image_file(image_id)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    if not path.is_file():
        raise HTTPException(404, f'the file of image {image_id} is gone: {searcher.paths[int(image_id)]}')
    try:
        return make(path)
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # what PIL raises for a bad file
        raise HTTPException(500, f'image {image_id} cannot be read: {err}') from None


# ----------------------------------------------------------------------- app
class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response.

    A plain ASGI wrapper rather than ``@app.middleware('http')``: Starlette's
    ``BaseHTTPMiddleware`` wraps ``receive``, and through it an endpoint no
    longer sees that its client has gone (``Request.is_disconnected``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message['type'] == 'http.response.start':
                MutableHeaders(scope=message).update(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _guarded_app(allowed_hosts: Sequence[str] | None) -> FastAPI:
    """An app without API docs that answers only ``allowed_hosts`` (None: any), sends
    :data:`SECURITY_HEADERS` with every response, and answers a :class:`QueryError` with 400."""
    app = FastAPI(title='rsretrieval archive search', docs_url=None, redoc_url=None, openapi_url=None)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.add_middleware(SecurityHeaders)  # added last: outermost, so the host check's 400 has them too

    @app.exception_handler(QueryError)
    async def refused(request: Request, err: QueryError) -> JSONResponse:
        return JSONResponse({'detail': str(err)}, status_code=400)

    return app


def queued_search(
    searcher: Searcher,
    place: Place,
    query: str,
    k: int,
    abandoned: Callable[[], bool] | None = None,
    compute_thread: Executor | None = None,
) -> list[dict]:
    """``searcher.search(query, k)`` in ``place``'s turn (an admitted :class:`~.admission.Place`).

    Args:
        compute_thread: Where the search runs (None: the calling thread). Torch's and
            faiss's OpenMP runtime keeps a team of threads for every thread that calls
            it, so the server runs its model and index from one thread of its own rather
            than from each query's thread (on a 64-core machine, 63 threads per query
            thread); both use every core, so running two searches at once gains nothing.

    Raises:
        Abandoned: ``abandoned()`` was true when the turn came; nothing was searched.
    """
    with place.turn(abandoned):
        if compute_thread is None:
            return searcher.search(query, k)
        return compute_thread.submit(searcher.search, query, k).result()


def _busy(full: QueueFull) -> JSONResponse:
    return JSONResponse(
        {'detail': f'the server is busy: {full.held} searches are in line; try again in {full.retry_after} s'},
        status_code=503,
        headers={'Retry-After': str(full.retry_after)},
    )


def create_app(
    searcher: Searcher, allowed_hosts: Sequence[str] | None = None, max_queue: int = DEFAULT_MAX_QUEUE
) -> FastAPI:
    """The FastAPI app of the search page over ``searcher``.

    Args:
        searcher: The loaded index and text encoder.
        allowed_hosts: ``Host`` headers answered (others get 400); None: any.
        max_queue: Queries that may wait while one is searched; one more gets
            ``503`` with ``Retry-After``. The default, 16, bounds a query's wait
            to 17 searches (1.2 s p99 with a MiniLM-L6 text encoder over 100,000
            images on 2 CPU cores, benchmarks/server_load.py) and the waiting
            queries to 17 threads,
            while a page's user has one query in flight. The line is
            ``app.state.admission``.

    Raises:
        ValueError: ``max_queue`` is negative.
    """
    app = _guarded_app(allowed_hosts)
    admission = AdmissionQueue(max_queue)
    # a thread for every place in the line, where it waits for its turn: a query never waits
    # for a thread, and it never takes one of FastAPI's pool, which thumbnails and images use
    query_threads = anyio.CapacityLimiter(admission.capacity)
    compute_thread = ThreadPoolExecutor(1, thread_name_prefix='search')
    app.state.admission = admission
    app.mount('/static', StaticFiles(directory=STATIC), name='static')
    thumbnail = functools.lru_cache(maxsize=THUMB_CACHE)(thumbnail_jpeg)

    @app.get('/', include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / 'index.html', media_type='text/html')

    @app.get('/api/info')
    def api_info() -> dict:
        """The index: number of images, embedding width, search backend and the request limits."""
        return dict(
            images=len(searcher),
            embed_dim=searcher.index.meta['embed_dim'],
            backend=searcher.backend,
            max_k=MAX_K,
            default_k=DEFAULT_K,
            max_query_chars=MAX_QUERY_CHARS,
            max_queue=admission.max_queue,
        )

    @app.get('/api/search')
    async def api_search(request: Request) -> Response:
        """``q``: the text; ``k``: results (1 to ``MAX_K``, default ``DEFAULT_K``); ``503`` with
        ``Retry-After`` when the line is full."""
        start = time.perf_counter()
        query, k = search_request(query_params(request.scope['query_string']))
        try:
            place = admission.admit()
        except QueueFull as full:
            return _busy(full)
        # asked once, from the worker thread, when the query's turn comes
        abandoned = functools.partial(anyio.from_thread.run, request.is_disconnected)
        try:
            hits = await anyio.to_thread.run_sync(
                queued_search, searcher, place, query, k, abandoned, compute_thread, limiter=query_threads
            )
        except Abandoned:
            return Response(status_code=499)  # nginx's "client closed request": nobody reads it
        finally:
            place.leave()
        for hit in hits:
            hit.update(thumbnail=f'/thumb/{hit["id"]}', image=f'/image/{hit["id"]}')
        took = round(1000 * (time.perf_counter() - start), 1)
        return JSONResponse(dict(query=query, k=k, images=len(searcher), took_ms=took, results=hits))

    @app.get('/thumb/{image_id}', include_in_schema=False)
    def thumb(image_id: str) -> Response:
        data = _image_or_error(searcher, image_id, thumbnail)
        return Response(data, media_type='image/jpeg', headers={'Cache-Control': 'max-age=3600'})

    @app.get('/image/{image_id}', include_in_schema=False)
    def image(image_id: str) -> Response:
        return _image_or_error(searcher, image_id, full_image)

    return app


def allowed_hosts_for(host: str) -> list[str] | None:
    """The ``Host`` headers to answer when listening on ``host``: loopback names on a
    loopback address (a defence against DNS rebinding), any (None) elsewhere."""
    if not is_loopback(host):
        return None
    literal = host.strip('[]')
    return sorted({'localhost', '127.0.0.1', '[::1]', f'[{literal}]' if ':' in literal else literal})


# -------------------------------------------------------------------- serving
def uvicorn_options(request_timeout: float | None = None, write_timeout: float | None = None) -> dict:
    """uvicorn's settings for the search server: the h11 protocol with deadlines for slow
    clients (:mod:`.slow_clients`; None: its defaults) and a short keep-alive.

    ``limit_concurrency`` is left unset on purpose: uvicorn counts idle connections
    against it, so a few hundred silent connections would turn every other client
    away; the line of queries, the thread pools and the deadlines bound the work.
    """
    from .slow_clients import REQUEST_TIMEOUT_S, WRITE_TIMEOUT_S, guarded_h11

    protocol = guarded_h11(
        REQUEST_TIMEOUT_S if request_timeout is None else request_timeout,
        WRITE_TIMEOUT_S if write_timeout is None else write_timeout,
    )
    return dict(http=protocol, timeout_keep_alive=KEEP_ALIVE_S)


def run_server(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` with uvicorn until Ctrl-C."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level='info', **uvicorn_options())


def serve(
    index: ArchiveIndex,
    model: BaseRetriever,
    host: str = '127.0.0.1',
    port: int = 8000,
    backend: str = 'auto',
    follow_symlinks: bool = False,
    max_queue: int = DEFAULT_MAX_QUEUE,
) -> None:
    """Serve the search page over ``index`` with ``model``'s text encoder until Ctrl-C (``rsretrieval-retrieve serve``).

    Args:
        index: The index.
        model: The model the index was built with (loaded once, here).
        host: Address to listen on; one off loopback is warned about.
        port: Port; 0 picks a free one.
        backend: ``'auto'``, ``'exact'`` or ``'faiss'`` (see :class:`Searcher`).
        follow_symlinks: Serve images that are symbolic links leading out of the image root.
        max_queue: Queries that may wait for their search (see :func:`create_app`).
    """
    from rsretrieval.apis import embed_texts

    searcher = Searcher(index, functools.partial(embed_texts, model), backend, follow_symlinks)
    app = create_app(searcher, allowed_hosts_for(host), max_queue)
    print(
        f'search page over {index.folder}: {len(searcher)} images, {searcher.backend} search, '
        f'at most {max_queue} queries waiting',
        flush=True,
    )
    if not is_loopback(host):
        print(
            f'warning: listening on {host}: anyone who can reach this address can search the index and see '
            'its images (there is no login)',
            file=sys.stderr,
            flush=True,
        )
    run_server(app, host, port)


@contextlib.contextmanager
def running(
    app: FastAPI,
    host: str = '127.0.0.1',
    port: int = 0,
    timeout: float = 30.0,
    request_timeout: float | None = None,
    write_timeout: float | None = None,
) -> Iterator[str]:
    """Serve ``app`` from a thread for the block (tests, benchmarks), with :func:`run_server`'s
    settings: yields its base URL.

    Args:
        app: The ASGI app.
        host: Address to listen on.
        port: Port; 0 picks a free one.
        timeout: Seconds to wait for the server to start.
        request_timeout: Seconds for a request head to arrive (None: the server's).
        write_timeout: Seconds a response may go unread (None: the server's).
    """
    import uvicorn

    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # proto named: asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level='warning', **uvicorn_options(request_timeout, write_timeout))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs=dict(sockets=[sock]), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f'the server did not start on {host}:{port}')
        time.sleep(0.02)
    address = f'[{host}]' if ':' in host else host
    try:
        yield f'http://{address}:{port}'
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
