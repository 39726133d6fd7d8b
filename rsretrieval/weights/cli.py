"""``rsretrieval-weights``: list, fetch and verify the pretrained weights of the model zoo.

Usage::

    rsretrieval-weights list
    rsretrieval-weights fetch NAME|SPEC [NAME|SPEC ...]
    rsretrieval-weights fetch --all
    rsretrieval-weights verify [NAME|SPEC ...]

Clusters whose compute nodes have no network: run ``fetch`` on a login node with
the same ``HF_HOME`` (and ``RSRETRIEVAL_CACHE`` for URL weights), then train with
``HF_HUB_OFFLINE=1``. Also runs as ``python -m rsretrieval.weights.cli``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from rsretrieval.cli import fail

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


#: ``name -> (help, add_arguments, run)``: the subcommands.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    'list': ('the model zoo: what each weight initialises, source, licence, size, cached?', _add_list, _run_list),
    'fetch': ('download weights into the local caches; print path and sha256', _add_fetch, _run_fetch),
    'verify': ('recompute the sha256 of cached weights and compare with the reference', _add_verify, _run_verify),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='List, fetch and verify the pretrained weights configs name (the model zoo).',
        epilog='No network on compute nodes: fetch on a login node sharing HF_HOME, then run with HF_HUB_OFFLINE=1.',
    )
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command)
        command.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rsretrieval-weights``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, 'run', None) is None:
        fail(f'choose a command: {", ".join(COMMANDS)}', PROG)
    try:
        return args.run(args)
    except ValueError as err:  # a malformed spec or zoo file: one line
        fail(str(err), PROG, code=1)


if __name__ == '__main__':
    sys.exit(main())
