"""The commands of ``rsretrieval-retrieve`` (parsed and checked by :mod:`rsretrieval.search.cli`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO, TypeVar

import torch

from rsretrieval.engine.stop_signals import StopRequested, stop_on_signals
from rsretrieval.utils.cpu_memory import keep_freed_cpu_memory
from rsretrieval.utils.progress import Progress as BaseProgress
from rsretrieval.weights.hashing import file_sha256

from .archive_index import ArchiveIndex, ArchiveIndexError, unreadable_images, unreadable_reason
from .choices import ann_kind
from .distributed_index import (
    PARTS,
    RankFailure,
    RankGroup,
    check_parts,
    detect_launch,
    merge_parts,
    one_line,
    part_folder,
    part_folders,
    part_paths,
    rank_device,
    remove_parts,
    split_blocks,
)
from .image_lists import ImageSelection, links_leaving_root, select_images
from .queries import prompt_lines, query_loop
from .render import Hit, results_grid, results_html, results_table

PROGRESS_EVERY = 30.0  # seconds between two progress lines when stdout is not a terminal
QUERY_BATCH = 256  # queries embedded and searched together: their score matrix is QUERY_BATCH x 65,536 floats
_STOP = (signal.SIGINT, signal.SIGTERM)
T = TypeVar('T')


def _model(config: str, checkpoint: str, device: str | None, cfg_options: dict | None, verbose: bool = False):
    from rsretrieval.apis import init_model

    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    return init_model(config, checkpoint, device=device, cfg_options=cfg_options, quiet=not verbose)


# ----------------------------------------------------------------------- progress
class Progress(BaseProgress):
    """The search CLI's progress: mmengine's bar on a terminal; redirected to a file, a line
    such as ``indexed 320/704 images, 41 s, ETA 48 s`` every ``every`` seconds and once at
    the end (:meth:`close`).

    Args:
        total: Images when the loop is over, ``done`` included.
        verb: What the loop does to an image (``'indexed'``, ``'checked'``).
        done: Images already done before this run (counted, but not in the rate).
        every: Seconds between two lines off a terminal.
        enabled: Report at all (False on the ranks other than 0).
        stream: Where to write; ``sys.stdout`` by default.
        clock: Seconds, monotonic (tests replace it).
    """

    def __init__(
        self,
        total: int,
        verb: str,
        done: int = 0,
        every: float = PROGRESS_EVERY,
        enabled: bool = True,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        stream = stream if stream is not None else sys.stdout
        super().__init__(
            total,
            verb,
            bar=None,
            every=every,
            enabled=enabled,
            done=done,
            unit='images',
            stream=stream,
            final_line=True,
            clock=clock,
        )


# -------------------------------------------------------------------------- index
@contextlib.contextmanager
def _stop_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block is over (then raise the first), so that a
    write completes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda n, _: received.append(n)) for signum in _STOP}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise KeyboardInterrupt if received[0] == signal.SIGINT else StopRequested(received[0])


class _ShardWriter:
    """Collects embedded batches and saves them as one shard of the index."""

    def __init__(self) -> None:
        self.index: ArchiveIndex | None = None
        self.pending: list[tuple[list[str], torch.Tensor]] = []
        self.saved = 0  # images saved by this run

    def add(self, paths: list[str], embeddings: torch.Tensor) -> None:
        self.pending.append((paths, embeddings))  # one append: Ctrl-C cannot split a batch

    def flush(self) -> None:
        """Save what is pending as a shard (possibly a short one); Ctrl-C waits for the write."""
        if not self.pending or self.index is None:
            return
        with _stop_deferred():
            paths = [p for batch, _ in self.pending for p in batch]
            self.index.add(paths, torch.cat([emb for _, emb in self.pending]))
            self.saved += len(paths)
            self.pending = []


def _embedding_width(model) -> int:
    """The width of the model's shared embedding space (text and image embeddings match)."""
    from rsretrieval.apis import embed_texts

    return int(embed_texts(model, ['width probe']).shape[1])


def _load_problems(model, root: Path, paths: list[str]) -> list[tuple[str, str]]:
    """Run the model's test pipeline on each of ``paths``: ``(path, reason)`` of those that fail."""
    from rsretrieval.apis import build_test_pipeline

    pipeline = build_test_pipeline(model.cfg)
    problems = []
    for i, path in enumerate(paths):
        full = str(root / path)
        try:
            pipeline(dict(img_path=full, sample_idx=i, image_id=i))
        except Exception as err:  # whatever the pipeline raises, the file is what failed
            problems.append((path, unreadable_reason(err, full)))
    return problems


def _embed(
    model,
    root: Path,
    paths: list[str],
    batch_size: int,
    workers: int,
    failed: list[tuple[str, str]],
    precision: str = 'fp32',
    run_images: int | None = None,
) -> Iterator[tuple[list[str], torch.Tensor]]:
    """Embed ``paths`` (relative to ``root``) in batches: yields ``(paths, embeddings)``.

    A batch that cannot be loaded is checked image by image: its unreadable
    files are appended to ``failed`` with the reason, the others are embedded
    again with the images after them. ``run_images`` is the size of the whole
    run that ``paths`` belongs to (it decides whether the encoder is compiled).
    """
    from rsretrieval.apis import iter_image_embeddings

    pending = list(paths)
    while pending:
        n = 0
        try:
            for batch, emb in iter_image_embeddings(
                model, [str(root / p) for p in pending], batch_size, workers, precision=precision, run_images=run_images
            ):
                yield pending[n : n + len(batch)], emb
                n += len(batch)
            return
        except RuntimeError:  # the loader's error for a file; or another failure, raised again
            found = _load_problems(model, root, pending[n : n + batch_size])
            if not found:
                raise
            failed.extend(found)
            bad = {path for path, _ in found}
            pending = [p for p in pending[n:] if p not in bad]


def _unreadable_report(problems: list[tuple[str, str]]) -> str:
    return '\n'.join(f'  {path}: {reason}' for path, reason in problems)


def _unreadable_error(root: Path, problems: list[tuple[str, str]], status: str) -> SystemExit:
    return SystemExit(
        f'error: {len(problems)} unreadable image file{"s" if len(problems) > 1 else ""} under {root} '
        f'({status}):\n{_unreadable_report(problems)}\n'
        'fix or remove them and rerun, or pass --skip-unreadable to index the other images'
    )


def _unreadable_failure(
    group: RankGroup, root: Path, problems: list[tuple[str, str]], status: str
) -> SystemExit | RankFailure:
    """The unreadable files' error, which every rank found together: rank 0 prints it."""
    error = _unreadable_error(root, problems, status)
    if not group.launch.distributed:
        return error
    return RankFailure(str(error.code), shown=group.first, together=True)


def _clear_index(folder: Path) -> None:
    for f in folder.glob('*'):
        if f.name == 'meta.json' or f.name.startswith('shard_') or f.name.startswith('ann.faiss'):
            f.unlink()
    remove_parts(folder)


def cmd_index(args: argparse.Namespace) -> None:
    """``index``: embed the images of a folder that the index lacks.

    Ctrl-C, and SIGTERM to the command or to its process group (a scheduler's
    time limit; the loader workers leave it to the main process), save the
    images encoded so far as a shard, print how many and exit with code 130
    (143 for SIGTERM); the same command then resumes.

    Under torchrun or srun (:mod:`~rsretrieval.search.distributed_index`) each
    process encodes a block of the images into a part folder and rank 0 merges
    the parts; an error on a rank ends the run with one line naming the rank.
    """
    launch = detect_launch(args.launcher)
    group = RankGroup(launch)
    writer = _ShardWriter()
    try:
        with stop_on_signals(('SIGTERM',)):
            _index(args, writer, group)
    except KeyboardInterrupt as err:
        try:
            writer.flush()
        except KeyboardInterrupt:  # another signal: it waited for the write, which is complete
            pass
        if sys.stdout.isatty():
            print(flush=True)  # end the progress bar's line
        how = f' ({signal.Signals(err.signum).name})' if isinstance(err, StopRequested) else ''
        who = f'{launch.name}: ' if launch.distributed else ''
        print(
            f'{who}interrupted{how}: {writer.saved} images saved; rerun the same command to resume',
            file=sys.stderr,
        )
        raise SystemExit(err.exit_code if isinstance(err, StopRequested) else 130) from None
    except RankFailure as err:
        if err.shown:
            print(err, file=sys.stderr, flush=True)
        if err.together:
            group.wait_for_all()
        raise SystemExit(1) from None
    except Exception as err:
        if not launch.distributed:
            raise
        if args.verbose:
            traceback.print_exc()
        print(f'error: {launch.name}: {one_line(err)}', file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    finally:
        group.leave()


def _note_links_leaving(root: Path, paths: list[str]) -> None:
    """Say which of ``paths`` are symbolic links leading out of ``root``: they are indexed, but
    the search server does not show them unless told to."""
    if leaving := links_leaving_root(root, paths):
        path, real = leaving[0]
        verb = 'leads' if len(leaving) == 1 else 'lead'
        print(
            f'note: {len(leaving)} of the images to encode {verb} out of {root} through a symbolic link '
            f'(first: {path} -> {real}): indexed, but `serve` shows them only with --follow-symlinks'
        )


def _agreed(group: RankGroup, step: Callable[[], T]) -> T:
    """``step()`` on every rank; its result where no rank failed (:meth:`RankGroup.agree`)."""
    try:
        result = step()
    except (Exception, SystemExit) as err:
        group.agree(err)
        raise
    group.agree(None)
    return result


def _concat(lists: list[list[T]]) -> list[T]:
    return [item for items in lists for item in items]


def _quiet(*args, **kwargs) -> None:
    """``print`` on the ranks other than 0."""


def _to_do(args: argparse.Namespace, folder: Path, root: Path) -> tuple[ImageSelection, set[str], bool]:
    """The images selected, those the index or its part folders hold, and whether there are parts."""
    selection = select_images(root, args.list, args.split_of, args.split, args.ann_format)
    if not selection.paths:
        raise SystemExit(f'no image (JPEG, PNG, TIFF) under {root}')
    done = set(ArchiveIndex(folder).paths()) if (folder / 'meta.json').is_file() else set()
    parts = part_paths(folder)
    return selection, done | set(parts), bool(part_folders(folder))


def _load_model(args: argparse.Namespace, device: str) -> tuple[torch.nn.Module, dict]:
    """The model on ``device`` and what the index records of it."""
    model = _model(args.config, args.checkpoint, device, args.cfg_options, args.verbose)
    info = dict(
        config=str(Path(args.config).resolve()),
        checkpoint=str(Path(args.checkpoint).resolve()),
        checkpoint_sha256=file_sha256(args.checkpoint),
        cfg_options=args.cfg_options or {},
    )
    return model, info


def _open_index(
    folder: Path, root: Path, width: int, info: dict, group: RankGroup, parted: bool
) -> tuple[ArchiveIndex | None, ArchiveIndex | None]:
    """The index (rank 0's) and, when ranks write parts (several processes, or the parts of an
    unfinished run are there), this rank's part folder."""
    index = ArchiveIndex.create(folder, root, width, info) if group.first else None
    if not (group.launch.distributed or parted):
        return index, None
    if index is not None:
        check_parts(folder, index.meta)
    return index, ArchiveIndex.create(part_folder(folder, group.launch.rank), root, width, info)


def _index(args: argparse.Namespace, writer: _ShardWriter, group: RankGroup) -> None:
    folder, root = Path(args.index_dir), Path(args.image_dir)
    launch, first = group.launch, group.first
    say = print if first else _quiet
    device = rank_device(args.device, launch, torch.cuda.is_available())
    group.join(device, args.dist_timeout)
    _agreed(group, lambda: first and args.rebuild and folder.exists() and _clear_index(folder))
    selection, done, parted = _agreed(group, lambda: _to_do(args, folder, root))
    images = selection.paths
    for note in selection.notes:
        say(f'note: {note}')
    todo = [p for p in images if p not in done]
    gone = len(done - set(images))
    say(f'{len(images)} images {selection.source}: {len(done)} already indexed, {len(todo)} to encode', flush=True)
    if gone:
        say(f'warning: {gone} indexed images are not {selection.source} (kept; --rebuild drops them)')
    if first:
        _note_links_leaving(root, todo)
    block = split_blocks(todo, launch.world_size)[launch.rank]
    if launch.distributed:
        say(f'{launch.world_size} processes encode about {len(block)} images each into {folder / PARTS}', flush=True)
    unreadable = _concat(group.gather(unreadable_images(root, block)))  # headers only: fast
    if unreadable and not args.skip_unreadable:
        # the run stops before encoding: decode the other files too, so that one run lists every bad file
        named = {path for path, _ in unreadable}
        rest = [p for p in block if p not in named]
        progress = Progress(len(rest), 'checked', enabled=first)
        mine = unreadable_images(root, rest, decode=True, on_checked=progress.update)
        progress.close()
        unreadable += _concat(group.gather(mine))
        raise _unreadable_failure(group, root, sorted(unreadable), 'nothing was encoded')

    if torch.device(device).type == 'cpu':
        keep_freed_cpu_memory()  # the batches reuse the pages of the one before
    model, info = _agreed(group, lambda: _load_model(args, device))
    index, part = _agreed(group, lambda: _open_index(folder, root, _embedding_width(model), info, group, parted))
    writer.index = part if part is not None else index
    named = {path for path, _ in unreadable}
    good = [p for p in block if p not in named]
    start = time.perf_counter()
    if launch.distributed:
        progress = Progress(len(good), f'{launch.name}: indexed', enabled=first)
    else:
        progress = Progress(len(done) + len(good), 'indexed', done=len(done))
    failed = _encode(model, root, good, args, writer, progress)
    ranks = group.gather((writer.saved, failed))  # every rank is done with its block
    saved, failed = sum(n for n, _ in ranks), _concat([f for _, f in ranks])
    unreadable = sorted(unreadable + failed)
    if first:
        _finish(args, group, index, part, images, unreadable, saved, start)
    elif unreadable and not args.skip_unreadable:
        raise _unreadable_failure(group, root, unreadable, 'rank 0 lists them')


def _finish(
    args: argparse.Namespace,
    group: RankGroup,
    index: ArchiveIndex | None,
    part: ArchiveIndex | None,
    images: list[str],
    unreadable: list[tuple[str, str]],
    saved: int,
    start: float,
) -> None:
    """Rank 0, once every rank has encoded its block: merge the parts, build the search index, report
    (the rate counts from ``start``, when the encoding began)."""
    assert index is not None
    folder, root = index.folder, Path(args.image_dir)
    merged = saved
    if part is not None:
        merged = merge_parts(index, images, args.shard_size)
        remove_parts(folder)
    if unreadable and not args.skip_unreadable:
        raise _unreadable_failure(group, root, unreadable, f'the other {saved} new images are indexed')

    n = len(index)
    ann = ann_kind(args.ann, n)
    if ann != 'none' and (merged or not index.has_ann):
        index.build_ann(ann)
    index.set_skipped(unreadable)
    elapsed = time.perf_counter() - start
    rate = f', {saved / elapsed:.1f} images/s' if saved and elapsed > 0 else ''
    backend = 'faiss ' + ann if index.has_ann else 'exact search'
    if part is not None:
        print(f'merged {merged} images from the part folders into the index')
    print(f'index {folder}: {n} images, {index.meta["embed_dim"]}-d, {backend}{rate}')
    if unreadable:
        print(f'skipped {len(unreadable)} unreadable image files (listed in {folder / "meta.json"}):')
        print(_unreadable_report(unreadable))


def _encode(
    model, root: Path, paths: list[str], args: argparse.Namespace, writer: _ShardWriter, progress: Progress
) -> list[tuple[str, str]]:
    """Embed ``paths`` into the index, a shard per ``args.shard_size`` images: the unreadable files."""
    failed: list[tuple[str, str]] = []
    total = progress.total
    for s in range(0, len(paths), args.shard_size):
        shard = paths[s : s + args.shard_size]
        # the whole run, not the shard, decides whether compiling the encoder pays off
        for batch, emb in _embed(
            model, root, shard, args.batch_size, args.workers, failed, getattr(args, 'precision', 'fp32'), len(paths)
        ):
            writer.add(batch, emb)
            progress.total = total - len(failed)
            progress.update(len(batch))
        writer.flush()
    progress.total = total - len(failed)
    progress.close()
    return failed


# ------------------------------------------------------------------------- search
def _write_outputs(args: argparse.Namespace, results: list, images: bool, query_images: bool = False) -> None:
    if args.html:
        Path(args.html).write_text(results_html(results, images, query_images), encoding='utf-8')
        print(f'wrote {args.html}')
    if getattr(args, 'grid', None):
        results_grid(results).save(args.grid)
        print(f'wrote {args.grid}')
    if args.json:
        data = [dict(query=q, results=[h.__dict__ for h in hits]) for q, hits in results]
        Path(args.json).write_text(json.dumps(data, indent=1), encoding='utf-8')
        print(f'wrote {args.json}')


def _index_and_model(args: argparse.Namespace) -> tuple[ArchiveIndex, torch.nn.Module]:
    """The index of ``args.index_dir`` and the model it was built with (``--config`` and
    ``--checkpoint`` point at moved files; the checkpoint's hash must match)."""
    index = ArchiveIndex(args.index_dir)
    recorded = index.meta['model']
    config = args.config or recorded['config']
    checkpoint = args.checkpoint or recorded['checkpoint']
    for what, path in (('config', config), ('checkpoint', checkpoint)):
        if not Path(path).is_file():
            raise SystemExit(f'the {what} recorded in the index, {path}, is gone: pass --{what}')
    if file_sha256(checkpoint) != recorded['checkpoint_sha256']:
        raise ArchiveIndexError(f'{checkpoint} is not the checkpoint {index.folder} was built with')
    options = recorded.get('cfg_options') or None
    return index, _model(config, checkpoint, args.device, options, args.verbose)


class _TextSearch:
    """An index and its model, loaded once, answering text queries: each query's table is printed.

    Args:
        index: The index.
        model: The model the index was built with.
        topk: Results per query.
        backend: ``'auto'``, ``'exact'`` or ``'faiss'``.
    """

    def __init__(self, index: ArchiveIndex, model: torch.nn.Module, topk: int, backend: str) -> None:
        self.index, self.model, self.topk = index, model, topk
        self.backend = index.search_backend(backend)
        self.paths = index.paths()
        index.prepare(self.backend)  # read now: the first query is answered as fast as the others

    def answer(self, queries: list[str]) -> list[tuple[str, list[Hit]]]:
        """Search ``queries``, :data:`QUERY_BATCH` at a time (the score matrix stays small), printing each table."""
        results = []
        for start in range(0, len(queries), QUERY_BATCH):
            results += self._answer_batch(queries[start : start + QUERY_BATCH])
        return results

    def _answer_batch(self, queries: list[str]) -> list[tuple[str, list[Hit]]]:
        from rsretrieval.apis import embed_texts

        scores, ids = self.index.search(embed_texts(self.model, queries), self.topk, self.backend)
        results = []
        for q, query in enumerate(queries):
            found = [(float(s), int(i)) for s, i in zip(scores[q], ids[q]) if i >= 0]  # faiss pads with -1
            hits = [Hit(r, s, self.index.absolute_path(self.paths[i])) for r, (s, i) in enumerate(found, 1)]
            print(results_table(query, hits) + '\n', flush=True)
            results.append((query, hits))
        return results


def cmd_search(args: argparse.Namespace) -> None:
    """``search``: the model loads once, then answers the queries of the arguments and of
    ``--queries``, then (``--interactive``) each line of stdin until its end."""
    index, model = _index_and_model(args)
    search = _TextSearch(index, model, args.topk, args.backend)
    results = search.answer(args.queries) if args.queries else []
    if args.interactive:
        results += _interactive(search)
    _write_outputs(args, results, images=True)


def _interactive(search: _TextSearch) -> list[tuple[str, list[Hit]]]:
    """Answer each line of stdin as it comes, until its end: the results of the lines answered."""
    if hasattr(sys.stdin, 'reconfigure'):  # bytes that are not UTF-8, or a lone CR, become a refused line
        sys.stdin.reconfigure(encoding='utf-8', errors='surrogateescape', newline='\n')
    if sys.stdin.isatty():
        print(
            f'{len(search.paths)} images in {search.index.folder}: type a query and press Enter; Ctrl-D ends',
            file=sys.stderr,
            flush=True,
        )
    results: list[tuple[str, list[Hit]]] = []
    query_loop(prompt_lines(sys.stdin), lambda query: results.extend(search.answer([query])))
    return results


def cmd_serve(args: argparse.Namespace) -> None:
    """``serve``: the search page over an index; the model loads once, before the server starts."""
    from . import server

    index, model = _index_and_model(args)
    server.serve(
        index,
        model,
        args.host,
        args.port,
        args.backend,
        follow_symlinks=args.follow_symlinks,
        max_queue=args.max_queue,
    )


def _read_captions(path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise SystemExit(f'caption file not found: {path}')
    if file.suffix == '.json':
        captions = json.loads(file.read_text(encoding='utf-8'))
        if not isinstance(captions, list) or not all(isinstance(c, str) and c.strip() for c in captions):
            raise SystemExit(f'{path}: expected a JSON list of non-empty strings')
        return captions
    captions = []
    for n, line in enumerate(file.read_text(encoding='utf-8').splitlines(), 1):
        if not line.strip():
            raise SystemExit(f'{path}:{n}: empty line (one caption per line)')
        captions.append(line.strip())
    return captions


def cmd_search_image(args: argparse.Namespace) -> None:
    from rsretrieval.apis import embed_texts, iter_image_embeddings

    captions = _read_captions(args.captions)
    model = _model(args.config, args.checkpoint, args.device, args.cfg_options, args.verbose)
    text_emb = embed_texts(model, captions)
    results = []
    for paths, emb in iter_image_embeddings(model, args.images, batch_size=16):
        scores, ids = torch.sort(emb @ text_emb.T, dim=1, descending=True, stable=True)
        k = min(args.topk, len(captions))
        for path, s, i in zip(paths, scores[:, :k].tolist(), ids[:, :k].tolist()):
            hits = [Hit(r + 1, s[r], captions[i[r]]) for r in range(k)]
            results.append((path, hits))
            print(results_table(path, hits) + '\n')
    _write_outputs(args, results, images=False, query_images=True)


# ---------------------------------------------------------------------------- CLI
