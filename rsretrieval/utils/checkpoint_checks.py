"""Whether an input file, or a checkpoint, can be read: checked without loading it.

torch-free, so that the tools report a missing or torn file before torch loads.
"""

from __future__ import annotations

import os

#: The end-of-central-directory signature that closes every zip file (torch's format).
_ZIP_END = b'PK\x05\x06'


def file_problem(path: str, what: str) -> str | None:
    """What is wrong with ``path`` as an input file, or None when it can be read."""
    if not os.path.exists(path):
        return f'{what} not found: {path}'
    if os.path.isdir(path):
        return f'{what} is a folder, not a file: {path}'
    if not os.access(path, os.R_OK):
        return f'{what} is not readable (permissions): {path}'
    return None


def checkpoint_problem(path: str) -> str | None:
    """What is wrong with a checkpoint file, or None.

    Beyond existence, a torch checkpoint (a zip archive) must end with the zip
    end-of-central-directory record: a file cut short by a crash during its
    save does not, and is reported as incomplete without loading it.
    """
    problem = file_problem(path, 'checkpoint')
    if problem or not path.endswith(('.pth', '.pt', '.ckpt')):
        return problem
    size = os.path.getsize(path)
    if size == 0:
        return f'checkpoint is empty (0 bytes): {path}'
    with open(path, 'rb') as f:
        head = f.read(4)
        if head != b'PK\x03\x04':  # not a zip: a legacy pickle checkpoint; torch.load decides
            return None
        f.seek(max(0, size - 65_557))  # the record sits in the last 22 bytes + a comment of up to 64 KiB
        tail = f.read()
    if _ZIP_END not in tail:
        return f'checkpoint is incomplete (cut short, e.g. by a crash while it was saved): {path} ({size:,} bytes)'
    return None
