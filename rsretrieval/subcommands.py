"""The sub-command table that every ``rsretrieval-*`` command line is built from.

A command line is a list of :class:`SubCommand`: a name, a help line, the
functions that add its arguments, the checks that run on the parsed arguments
before anything heavy is imported, and the function that runs it. The table
is the only place a sub-command is described, so that adding one is adding a
row. Nothing here imports more than :mod:`argparse`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rsretrieval.cli import fail

#: Adds a sub-command's arguments to its parser.
ArgumentAdder = Callable[[argparse.ArgumentParser], None]
#: Fails in one line (:func:`rsretrieval.cli.fail`) when the parsed arguments cannot be used.
Check = Callable[[argparse.Namespace], None]
#: Runs the sub-command; returns the exit status (None: 0).
Run = Callable[[argparse.Namespace], int | None]


@dataclass(frozen=True)
class SubCommand:
    """One row of a command line's table.

    Args:
        name: What the user types (``index``, ``fetch``).
        help: One line for the command list and the sub-command's ``--help``.
        arguments: Functions adding the arguments, in order (shared groups of
            options are functions several rows list).
        run: Runs the sub-command on the parsed, checked arguments; it imports
            what it needs (torch, the models) itself.
        checks: Run in order after parsing, before :attr:`run`.
    """

    name: str
    help: str
    arguments: tuple[ArgumentAdder, ...]
    run: Run
    checks: tuple[Check, ...] = ()


def build_subcommand_parser(
    prog: str, description: str, commands: Sequence[SubCommand], epilog: str | None = None
) -> argparse.ArgumentParser:
    """An argument parser with one sub-parser per row of ``commands``.

    The chosen row is stored in the parsed arguments as ``subcommand``.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog)
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for command in commands:
        sub_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        for add_arguments in command.arguments:
            add_arguments(sub_parser)
        sub_parser.set_defaults(subcommand=command)
    return parser


def chosen_subcommand(args: argparse.Namespace, commands: Sequence[SubCommand], prog: str) -> SubCommand:
    """The row the parsed arguments chose, its checks passed; one line and exit 2 when no
    sub-command was given."""
    command = getattr(args, 'subcommand', None)
    if command is None:
        fail(f'choose a command: {", ".join(c.name for c in commands)}', prog)
    for check in command.checks:
        check(args)
    return command
