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
- the model loads once, before the server starts; the endpoints are synchronous,
  so FastAPI runs them in its thread pool: a query being encoded does not hold
  up the other requests (the encoder is called under a lock, tokenisers are not
  thread-safe);
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
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.middleware.trustedhost import TrustedHostMiddleware

from rsretrieval.datasets.transforms import read_rgb

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
        if len(index.embeddings()) != len(self.paths):  # read now rather than on the first query
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
def _guarded_app(allowed_hosts: Sequence[str] | None) -> FastAPI:
    """An app without API docs that answers only ``allowed_hosts`` (None: any), sends
    :data:`SECURITY_HEADERS` with every response, and answers a :class:`QueryError` with 400."""
    app = FastAPI(title='rsretrieval archive search', docs_url=None, redoc_url=None, openapi_url=None)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    @app.middleware('http')
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(QueryError)
    async def refused(request: Request, err: QueryError) -> JSONResponse:
        return JSONResponse({'detail': str(err)}, status_code=400)

    return app


def create_app(searcher: Searcher, allowed_hosts: Sequence[str] | None = None) -> FastAPI:
    """The FastAPI app of the search page over ``searcher``.

    Args:
        searcher: The loaded index and text encoder.
        allowed_hosts: ``Host`` headers answered (others get 400); None: any.
    """
    app = _guarded_app(allowed_hosts)
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
        )

    @app.get('/api/search')
    def api_search(request: Request) -> JSONResponse:
        """``q``: the text; ``k``: results (1 to ``MAX_K``, default ``DEFAULT_K``)."""
        start = time.perf_counter()
        query, k = search_request(query_params(request.scope['query_string']))
        hits = searcher.search(query, k)
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
def run_server(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` with uvicorn until Ctrl-C."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level='info')


def serve(
    index: ArchiveIndex,
    model: BaseRetriever,
    host: str = '127.0.0.1',
    port: int = 8000,
    backend: str = 'auto',
    follow_symlinks: bool = False,
) -> None:
    """Serve the search page over ``index`` with ``model``'s text encoder until Ctrl-C (``rsretrieval-retrieve serve``).

    Args:
        index: The index.
        model: The model the index was built with (loaded once, here).
        host: Address to listen on; one off loopback is warned about.
        port: Port; 0 picks a free one.
        backend: ``'auto'``, ``'exact'`` or ``'faiss'`` (see :class:`Searcher`).
        follow_symlinks: Serve images that are symbolic links leading out of the image root.
    """
    from rsretrieval.apis import embed_texts

    searcher = Searcher(index, functools.partial(embed_texts, model), backend, follow_symlinks)
    app = create_app(searcher, allowed_hosts_for(host))
    print(f'search page over {index.folder}: {len(searcher)} images, {searcher.backend} search', flush=True)
    if not is_loopback(host):
        print(
            f'warning: listening on {host}: anyone who can reach this address can search the index and see '
            'its images (there is no login)',
            file=sys.stderr,
            flush=True,
        )
    run_server(app, host, port)


@contextlib.contextmanager
def running(app: FastAPI, host: str = '127.0.0.1', port: int = 0, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` from a thread for the block (tests, benchmarks): yields its base URL.

    Args:
        app: The ASGI app.
        host: Address to listen on.
        port: Port; 0 picks a free one.
        timeout: Seconds to wait for the server to start.
    """
    import uvicorn

    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # proto named: asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level='warning'))
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
