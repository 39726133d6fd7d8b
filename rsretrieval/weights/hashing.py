"""sha256 of weight files, answered from a Hugging Face blob's name where it is one."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

#: A sha256 in hex: the name huggingface_hub gives an LFS file's blob.
SHA256_HEX = re.compile(r'[0-9a-f]{64}')
#: Bytes read (and downloaded) at a time.
CHUNK_BYTES = 1 << 20

_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike, *, trust_blob_name: bool = True) -> str:
    """sha256 of a file, memoised per (path, size, mtime).

    Args:
        path: The file; a symlink into a Hugging Face cache's ``blobs/`` folder
            whose target is named by a sha256 (an LFS file) is answered from
            that name unless ``trust_blob_name`` is False.
        trust_blob_name: False recomputes the digest from the bytes (verify).

    Returns:
        The digest in lower-case hex.
    """
    path = Path(path)
    if trust_blob_name:
        blob = hf_blob_sha256(path)
        if blob is not None:
            return blob
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (real, stat.st_size, stat.st_mtime_ns)
    if not trust_blob_name or key not in _SHA_MEMO:
        _SHA_MEMO[key] = _hash_file(real)
    return _SHA_MEMO[key]


def _hash_file(path: str) -> str:
    with open(path, 'rb') as f:
        if hasattr(hashlib, 'file_digest'):  # Python >= 3.11
            return hashlib.file_digest(f, 'sha256').hexdigest()
        digest = hashlib.sha256()
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
        return digest.hexdigest()


def hf_blob_sha256(path: Path) -> str | None:
    """The sha256 a Hugging Face cache names a snapshot file's blob by, or None.

    Only LFS files have sha256-named blobs; small git files are named by their
    git sha1 and give None.
    """
    real = Path(os.path.realpath(path))
    if path.is_symlink() and real.parent.name == 'blobs' and SHA256_HEX.fullmatch(real.name):
        return real.name
    return None
