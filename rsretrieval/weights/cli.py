"""``rsretrieval-weights``: the pretrained weights of the model zoo, and open_clip checkpoints.

Usage::

    rsretrieval-weights list
    rsretrieval-weights fetch NAME|SPEC [NAME|SPEC ...]
    rsretrieval-weights fetch --all
    rsretrieval-weights verify [NAME|SPEC ...]
    rsretrieval-weights inspect-open-clip CKPT
    rsretrieval-weights convert-open-clip CKPT OUT.pt

Clusters whose compute nodes have no network: run ``fetch`` on a login node with
the same ``HF_HOME`` (and ``RSRETRIEVAL_CACHE`` for URL weights), then train with
``HF_HUB_OFFLINE=1``. Also runs as ``python -m rsretrieval.weights.cli``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rsretrieval.cli import fail
from rsretrieval.subcommands import SubCommand, build_subcommand_parser, chosen_subcommand

PROG = 'rsretrieval-weights'


# ------------------------------------------------------------------------------ list
def _add_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--no-cache-check', action='store_true', help='do not look into the local caches')


def _run_list(args: argparse.Namespace) -> int:
    from .resolver import WeightsUnavailableError, resolve_weights
    from .zoo import format_size, load_zoo

    rows = [('NAME', 'INITIALISES', 'SOURCE', 'LICENCE', 'PARAMS (~fp32 size)', 'CACHED')]
    for entry in load_zoo().values():
        cached = '-'
        if not args.no_cache_check:
            try:
                resolve_weights(entry.name, local_only=True)
                cached = 'yes'
            except (ValueError, WeightsUnavailableError):
                cached = 'no'
        size = f'{entry.params / 1e6:.1f}M (~{format_size(entry.approx_fp32_bytes)})'
        rows.append((entry.name, entry.initialises, entry.source, entry.licence, size, cached))
    _print_table(rows)
    print('~fp32 size: parameters x 4 bytes, an approximation of the download.')
    return 0


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print('  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


# ------------------------------------------------------------------------------ fetch
def _add_fetch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('specs', nargs='*', metavar='NAME|SPEC', help='zoo names, hf-hub: specs, URLs or paths')
    parser.add_argument('--all', action='store_true', help='fetch every entry of the zoo')


def _run_fetch(args: argparse.Namespace) -> int:
    from .resolver import WeightsUnavailableError, resolve_weights

    specs = _names(args)
    if not specs:
        fail('name the weights to fetch (see `rsretrieval-weights list`) or give --all', PROG)
    failures = []
    for spec in specs:
        try:
            resolved = resolve_weights(spec)
        except (ValueError, WeightsUnavailableError) as err:
            failures.append(str(err))
            continue
        print(f'{spec}: {resolved.path} sha256={resolved.sha256 or "-"}', flush=True)
    return _report(failures)


def _names(args: argparse.Namespace) -> list[str]:
    if getattr(args, 'all', False):
        if args.specs:
            fail('give names or --all, not both', PROG)
        from .zoo import load_zoo

        return list(load_zoo())
    return list(dict.fromkeys(args.specs))


def _report(failures: list[str]) -> int:
    """Each failure on its own ``prog: error:`` line; exit 1 when there was one."""
    for message in failures[:-1]:
        print(f'{PROG}: error: {message}', file=sys.stderr)
    if failures:
        fail(failures[-1], PROG, code=1)
    return 0


# ------------------------------------------------------------------------------ verify
def _add_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('specs', nargs='*', metavar='NAME|SPEC', help='what to verify (default: the whole zoo)')


def _run_verify(args: argparse.Namespace) -> int:
    from .resolver import verify_weights
    from .zoo import load_zoo

    specs = list(dict.fromkeys(args.specs)) or list(load_zoo())
    mismatches = []
    for spec in specs:
        result = verify_weights(spec)
        line = f'{spec}: {result.status}' + ('' if result.status == 'NOT CACHED' else f' {result.detail}')
        print(line, flush=True)
        if result.status == 'MISMATCH':
            mismatches.append(f'{spec}: {result.detail}; delete it and fetch again: rsretrieval-weights fetch {spec}')
    return _report(mismatches)


# ------------------------------------------------------------------ open_clip checkpoints
def _add_checkpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('checkpoint', metavar='CKPT', help='a file, or a weight name (zoo name, hf-hub:, URL)')


def _add_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('out', metavar='OUT', help='the plain state dict to write (.pt)')


def _run_inspect_open_clip(args: argparse.Namespace) -> int:
    from rsretrieval.models.utils.open_clip_weights import describe_open_clip_checkpoint
    from rsretrieval.utils import CheckpointError

    try:
        print(describe_open_clip_checkpoint(args.checkpoint))
    except (CheckpointError, FileNotFoundError) as err:
        fail(str(err), PROG)
    return 0


def _run_convert_open_clip(args: argparse.Namespace) -> int:
    import torch

    from rsretrieval.models.utils.open_clip_weights import read_open_clip_state_dict
    from rsretrieval.utils import CheckpointError

    try:
        state = read_open_clip_state_dict(args.checkpoint)
    except (CheckpointError, FileNotFoundError) as err:
        fail(str(err), PROG)
    torch.save(state, args.out)
    print(f'{args.out}: {len(state)} tensors')
    return 0


COMMANDS = (
    SubCommand(
        'list', 'the model zoo: what each weight initialises, source, licence, size, cached?', (_add_list,), _run_list
    ),
    SubCommand('fetch', 'download weights into the local caches; print path and sha256', (_add_fetch,), _run_fetch),
    SubCommand(
        'verify', 'recompute the sha256 of cached weights and compare with the reference', (_add_verify,), _run_verify
    ),
    SubCommand(
        'inspect-open-clip',
        'say which architecture an open_clip checkpoint holds (read weights_only)',
        (_add_checkpoint,),
        _run_inspect_open_clip,
    ),
    SubCommand(
        'convert-open-clip',
        "rewrite an open_clip checkpoint as a plain state dict (no 'state_dict' nesting, no 'module.' prefix)",
        (_add_checkpoint, _add_out),
        _run_convert_open_clip,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one sub-parser per row of :data:`COMMANDS`."""
    return build_subcommand_parser(
        PROG,
        'List, fetch and verify the pretrained weights configs name (the model zoo); inspect and convert '
        'open_clip checkpoints.',
        COMMANDS,
        epilog='No network on compute nodes: fetch on a login node sharing HF_HOME, then run with HF_HUB_OFFLINE=1.',
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rsretrieval-weights``; returns the exit status."""
    args = build_parser().parse_args(argv)
    command = chosen_subcommand(args, COMMANDS, PROG)
    try:
        return command.run(args) or 0
    except ValueError as err:  # a malformed spec or zoo file: one line
        fail(str(err), PROG, code=1)


if __name__ == '__main__':
    sys.exit(main())
