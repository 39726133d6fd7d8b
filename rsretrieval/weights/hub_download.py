"""Hugging Face Hub weights: one file or a folder snapshot, through huggingface_hub's cache.

huggingface_hub does the caching, locking and atomic renames; this module adds
what it leaves out: the content of every LFS blob a call downloads is checked
against its sha256 name, and a folder snapshot must hold the zoo entry's files.
huggingface_hub is imported only when a Hub spec is resolved.
"""

from __future__ import annotations

import os
from pathlib import Path

from .environment import hub_cache_dir, hub_endpoint, offline_reason
from .errors import fetch_command, fetch_elsewhere, unavailable_error
from .hashing import SHA256_HEX, file_sha256
from .hub_errors import hub_unavailable_error
from .sources import WeightSpec

#: Files of other frameworks a folder snapshot never fetches.
SNAPSHOT_IGNORE = (
    '*.h5',
    '*.msgpack',
    '*.onnx',
    '*.ot',
    '*.tflite',
    '*.mlmodel',
    'onnx/*',
    'openvino/*',
    'coreml/*',
    'tf_model*',
    'flax_model*',
    'rust_model*',
)


def resolve_hub(spec: WeightSpec, local_only: bool) -> Path:
    """The cached file or snapshot folder of a Hub spec, downloading it if allowed.

    Args:
        spec: A spec of kind ``'hf-hub'``.
        local_only: Use only the cache.

    Returns:
        The snapshot path of the file (``spec.filename``) or of the folder.

    Raises:
        WeightsUnavailableError: The download failed, a blob was corrupted, or
            the snapshot lacks a file the zoo entry names.
    """
    import huggingface_hub as hf
    from huggingface_hub.file_download import repo_folder_name

    offline = offline_reason(local_only)
    cache_dir = hub_cache_dir()
    blobs = Path(cache_dir) / repo_folder_name(repo_id=spec.repo, repo_type='model') / 'blobs'
    before = _listdir(blobs)
    common = dict(
        repo_id=spec.repo,
        revision=spec.revision,
        cache_dir=cache_dir,
        local_files_only=offline is not None,
        endpoint=hub_endpoint(),
    )
    try:
        if spec.filename:
            path = Path(hf.hf_hub_download(filename=spec.filename, **common))
        else:
            patterns = list(spec.files) or None
            path = Path(hf.snapshot_download(allow_patterns=patterns, ignore_patterns=list(SNAPSHOT_IGNORE), **common))
    except Exception as err:  # huggingface_hub raises many types; each becomes one line
        raise hub_unavailable_error(spec, err, offline) from err
    _verify_new_blobs(spec, blobs, before)
    if not spec.filename:
        _check_snapshot_files(spec, path, offline)
    return path


def _listdir(folder: Path) -> set[str]:
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()


def _verify_new_blobs(spec: WeightSpec, blobs: Path, before: set[str]) -> None:
    """Hash every sha256-named blob this call added; remove and fail on a mismatch.

    huggingface_hub checks a download's size, not its content: a proxy or disk
    that corrupts bytes would leave a bad blob under its final name.
    """
    for name in sorted(_listdir(blobs) - before):
        if not SHA256_HEX.fullmatch(name):
            continue
        got = file_sha256(blobs / name, trust_blob_name=False)
        if got != name:
            removed = _remove_blob(blobs / name)
            raise unavailable_error(
                spec,
                f'sha256 mismatch in the downloaded {removed or name}: expected {name}, got {got}; '
                'the corrupted file was removed from the cache',
                f'Fetch again: {fetch_command(spec)}',
            )


def _remove_blob(blob: Path) -> str | None:
    """Delete a blob and the snapshot links to it; the repo file name it had, if any."""
    name = None
    snapshots = blob.parent.parent / 'snapshots'
    for link in snapshots.rglob('*') if snapshots.is_dir() else ():
        if link.is_symlink() and os.path.realpath(link) == os.path.realpath(blob):
            name = str(link.relative_to(snapshots).as_posix().split('/', 1)[-1])
            link.unlink()
    blob.unlink(missing_ok=True)
    return name


def _check_snapshot_files(spec: WeightSpec, folder: Path, offline: str | None) -> None:
    """Every plain file name of the zoo entry's ``files`` must be in the snapshot."""
    missing = [f for f in spec.files if not any(c in f for c in '*?[') and not (folder / f).is_file()]
    if not missing:
        return
    if offline:
        raise unavailable_error(
            spec,
            f'the cached snapshot of {spec.repo} lacks {", ".join(missing)} and downloads are off ({offline})',
            fetch_elsewhere(spec),
        )
    raise unavailable_error(spec, f'Hub repo {spec.repo} has no {", ".join(missing)}', "Check the zoo entry's files")
