"""A loopback stand-in for the Hugging Face Hub (and for plain URL downloads).

It answers the requests huggingface_hub 2.4.0 makes for ``hf_hub_download`` and
``snapshot_download`` (read from its source and checked against the requests
that arrive):

- ``HEAD``/``GET /{org}/{name}/resolve/{revision}/{path}``: the file, with
  ``X-Repo-Commit``, ``ETag`` (git sha1; sha256 for LFS files), for LFS files
  ``X-Linked-Etag``/``X-Linked-Size``, and ``Range: bytes=N-`` support;
- ``GET /api/models/{org}/{name}/revision/{revision}``: ``{id, sha, siblings}``;
- ``GET /api/models/{org}/{name}/tree/{revision}``: the recursive file listing;
- ``GET /files/{name}``: a plain file for URL specs.

Errors come the way the Hub sends them: 404 with ``X-Error-Code`` ``RepoNotFound``,
``RevisionNotFound`` or ``EntryNotFound``; 401 ``GatedRepo``. It never sends Xet
headers, so huggingface_hub downloads over plain HTTP. It can cut a download short
(``cut``), serve wrong bytes for the advertised sha256 (``corrupt``) and counts
every request (``requests``).

Use it from tests through the fixtures of ``conftest.py`` (``hub_mirror``,
``hub_env``), or directly::

    with HubMirror({'org/repo': {'model.safetensors': data}}) as mirror:
        ...  # HF_ENDPOINT=mirror.url
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: Files the Hub stores in LFS (their ETag is their sha256), as .gitattributes usually says.
LFS_SUFFIXES = ('.safetensors', '.bin', '.pt', '.pth', '.h5', '.msgpack', '.onnx', '.ot', '.zip')
REPO = Path(__file__).resolve().parents[1]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_sha1(data: bytes) -> str:
    """The git blob id of ``data`` (the Hub's ETag of a non-LFS file)."""
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


@dataclass
class MirrorRepo:
    """One repo: ``{path in repo: bytes}``."""

    repo_id: str
    files: dict[str, bytes]

    @property
    def commit(self) -> str:
        digest = hashlib.sha1(self.repo_id.encode())
        for name in sorted(self.files):
            digest.update(name.encode() + b'\0' + self.files[name])
        return digest.hexdigest()

    def is_lfs(self, name: str) -> bool:
        return name.endswith(LFS_SUFFIXES)

    def etag(self, name: str) -> str:
        data = self.files[name]
        return sha256(data) if self.is_lfs(name) else git_sha1(data)


@dataclass
class HubMirror:
    """The loopback server. ``cut``/``corrupt`` hold ``(repo_id, path)`` pairs or
    ``('files', name)`` for plain URLs; ``gated`` holds repo ids."""

    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    url_files: dict[str, bytes] = field(default_factory=dict)
    cut: set[tuple[str, str]] = field(default_factory=set)
    corrupt: set[tuple[str, str]] = field(default_factory=set)
    gated: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -------------------------------------------------------------- control
    def start(self) -> HubMirror:
        mirror = self

        class Handler(_Handler):
            owner = mirror

        self._server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HubMirror:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the value for ``HF_ENDPOINT``."""
        host, port = self._server.server_address[:2]
        return f'http://{host}:{port}'

    def file_url(self, name: str) -> str:
        """The URL of a plain file served from :attr:`url_files`."""
        return f'{self.url}/files/{name}'

    def repo(self, repo_id: str) -> MirrorRepo:
        return MirrorRepo(repo_id, self.repos[repo_id])

    def log(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def count(self, contains: str = '') -> int:
        """Requests so far whose path contains ``contains``."""
        with self._lock:
            return sum(contains in path for _, path in self.requests)


class _Handler(BaseHTTPRequestHandler):
    owner: HubMirror
    protocol_version = 'HTTP/1.0'  # one request per connection: a cut-short body ends with the connection

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    # -------------------------------------------------------------- routing
    def _route(self, head: bool) -> None:
        path = urlsplit(self.path).path
        self.owner.log(self.command, path)
        parts = [unquote(p) for p in path.strip('/').split('/')]
        if parts[:2] == ['api', 'models'] and len(parts) >= 6 and parts[4] in ('revision', 'tree'):
            return self._api(f'{parts[2]}/{parts[3]}', parts[4], parts[5])
        if len(parts) >= 5 and parts[2] == 'resolve':
            return self._resolve(f'{parts[0]}/{parts[1]}', parts[3], '/'.join(parts[4:]), head)
        if parts[0] == 'files' and len(parts) == 2:
            return self._plain_file(parts[1], head)
        self._error(404, None, 'Not Found')

    def _repo_or_error(self, repo_id: str, revision: str) -> MirrorRepo | None:
        if repo_id in self.owner.gated:
            return self._error(401, 'GatedRepo', 'Access to this repo is restricted')
        if repo_id not in self.owner.repos:
            return self._error(404, 'RepoNotFound', 'Repository not found')
        repo = self.owner.repo(repo_id)
        if revision not in ('main', repo.commit):
            return self._error(404, 'RevisionNotFound', 'Invalid rev id')
        return repo

    def _api(self, repo_id: str, what: str, revision: str) -> None:
        repo = self._repo_or_error(repo_id, revision)
        if repo is None:
            return
        if what == 'revision':
            body = {'id': repo_id, 'sha': repo.commit, 'private': False, 'siblings': []}
            body['siblings'] = [{'rfilename': name} for name in sorted(repo.files)]
        else:
            body = [self._tree_entry(repo, name) for name in sorted(repo.files)]
        data = json.dumps(body).encode()
        self._headers(200, {'Content-Type': 'application/json', 'Content-Length': str(len(data))})
        self.wfile.write(data)

    @staticmethod
    def _tree_entry(repo: MirrorRepo, name: str) -> dict:
        data = repo.files[name]
        entry = {'type': 'file', 'path': name, 'size': len(data), 'oid': git_sha1(data)}
        if repo.is_lfs(name):
            entry['lfs'] = {'oid': sha256(data), 'size': len(data), 'pointerSize': 134}
        return entry

    def _resolve(self, repo_id: str, revision: str, name: str, head: bool) -> None:
        repo = self._repo_or_error(repo_id, revision)
        if repo is None:
            return
        if name not in repo.files:
            return self._error(404, 'EntryNotFound', 'Entry not found', {'X-Repo-Commit': repo.commit})
        extra = {'X-Repo-Commit': repo.commit, 'ETag': f'"{repo.etag(name)}"'}
        if repo.is_lfs(name):
            extra.update({'X-Linked-Etag': f'"{repo.etag(name)}"', 'X-Linked-Size': str(len(repo.files[name]))})
        self._send_file(repo.files[name], (repo_id, name), head, extra)

    def _plain_file(self, name: str, head: bool) -> None:
        if name not in self.owner.url_files:
            return self._error(404, None, 'Not Found')
        self._send_file(self.owner.url_files[name], ('files', name), head, {})

    # -------------------------------------------------------------- responses
    def _send_file(self, data: bytes, key: tuple[str, str], head: bool, extra: dict) -> None:
        if key in self.owner.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]  # same length, wrong content
        start = self._range_start()
        body = data[start:]
        headers = {**extra, 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes'}
        headers['Content-Length'] = str(len(body))
        if start:
            headers['Content-Range'] = f'bytes {start}-{len(data) - 1}/{len(data)}'
        self._headers(206 if start else 200, headers)
        if head:
            return
        if key in self.owner.cut:
            # First attempt: half the bytes; resumed attempts: none. Then the connection drops.
            self.wfile.write(body[: len(body) // 2] if not start else b'')
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def _range_start(self) -> int:
        value = self.headers.get('Range', '')
        if value.startswith('bytes=') and value.endswith('-'):
            return int(value[len('bytes=') : -1] or 0)
        return 0

    def _headers(self, status: int, headers: dict) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _error(self, status: int, code: str | None, message: str, extra: dict | None = None) -> None:
        data = json.dumps({'error': message}).encode()
        headers = {**(extra or {}), 'Content-Type': 'application/json', 'Content-Length': str(len(data))}
        if code:
            headers.update({'X-Error-Code': code, 'X-Error-Message': message})
        self._headers(status, headers)
        if self.command != 'HEAD':
            self.wfile.write(data)
        return None


# ------------------------------------------------------------------ environment helpers
#: Variables a test environment clears: anything that would send requests elsewhere or switch downloads off.
CLEARED_VARS = (
    'HF_HUB_OFFLINE',
    'TRANSFORMERS_OFFLINE',
    'RSRETRIEVAL_OFFLINE',
    'HF_TOKEN',
    'RSRETRIEVAL_ZOO',
    'HUGGINGFACE_HUB_CACHE',
)


def mirror_env(mirror: HubMirror, root: Path) -> dict[str, str]:
    """Variables pointing huggingface_hub and the URL cache at ``mirror`` and ``root``."""
    return {
        'HF_ENDPOINT': mirror.url,
        'HF_HOME': str(root / 'hf'),
        'HF_HUB_CACHE': str(root / 'hf' / 'hub'),
        'RSRETRIEVAL_CACHE': str(root / 'rsretrieval'),
        'HF_HUB_DISABLE_PROGRESS_BARS': '1',
        'HF_HUB_DISABLE_TELEMETRY': '1',
        'NO_PROXY': '127.0.0.1,localhost',
    }


@dataclass
class HubEnv:
    """What the ``hub_env`` fixture yields.

    Attributes:
        mirror: The running :class:`HubMirror`.
        root: The test's folder; caches live under it.
        env: Variables for a subprocess (``os.environ`` plus :func:`mirror_env`, offline switches cleared).
    """

    mirror: HubMirror
    root: Path
    env: dict[str, str]

    @property
    def hub_cache(self) -> Path:
        return Path(self.env['HF_HUB_CACHE'])

    @property
    def url_cache(self) -> Path:
        return Path(self.env['RSRETRIEVAL_CACHE']) / 'url'

    def run_cli(self, *args: str, offline: bool = False, **env: str) -> subprocess.CompletedProcess:
        """``python -m rsretrieval.weights.cli ARGS`` against the mirror (optionally with HF_HUB_OFFLINE=1)."""
        variables = {**self.env, **env, **({'HF_HUB_OFFLINE': '1'} if offline else {})}
        command = [sys.executable, '-m', 'rsretrieval.weights.cli', *args]
        return subprocess.run(command, env=variables, cwd=REPO, capture_output=True, text=True, timeout=120)


def subprocess_env(mirror: HubMirror, root: Path) -> dict[str, str]:
    """``os.environ`` without the offline switches, plus :func:`mirror_env`."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARS}
    env.update(mirror_env(mirror, root))
    return env
