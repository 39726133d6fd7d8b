"""The error every weight failure raises, and the one-line messages it carries.

A message is ``weights 'SPEC': problem. Remedy``: the spec, what went wrong and
what to do, on one line so that it reads the same in a log and a terminal.
"""

from __future__ import annotations

from .sources import WeightSpec

#: The command that downloads weights, named in remedies.
FETCH = 'rsretrieval-weights fetch'


class WeightsUnavailableError(FileNotFoundError):
    """Weights that cannot be resolved; ``str()`` is one line: spec, problem, remedy."""

    def __init__(self, message: str, spec: str | None = None, problem: str | None = None):
        super().__init__(' '.join(str(message).split()))
        self.spec = spec
        #: what went wrong without the remedy, for messages that list several weights
        self.problem = problem or self.args[0]

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):
        return type(self), (self.args[0], self.spec, self.problem)


def unavailable_error(spec: WeightSpec | str, problem: str, remedy: str = '') -> WeightsUnavailableError:
    """The error for ``spec``: ``weights 'SPEC': problem. remedy``.

    Args:
        spec: The parsed spec or its text.
        problem: What went wrong.
        remedy: What to do about it; omitted from the message when empty.
    """
    text = spec.spec if isinstance(spec, WeightSpec) else spec
    message = f'weights {text!r}: {problem}' + (f'. {remedy}' if remedy else '')
    return WeightsUnavailableError(message, spec=text, problem=problem)


def fetch_command(spec: WeightSpec) -> str:
    """The shell command that downloads ``spec``'s weights."""
    return f'{FETCH} {spec.fetch_target}'


def fetch_elsewhere(spec: WeightSpec, note: str = '') -> str:
    """The remedy for weights this machine cannot download: fetch them on another.

    Args:
        spec: The weights.
        note: Text appended after "on a machine with network" (starting with its
            own separator).
    """
    return f'Run `{fetch_command(spec)}` on a machine with network{note}'


def offline_miss_error(spec: WeightSpec, reason: str, where: str) -> WeightsUnavailableError:
    """Weights missing from the cache ``where`` while downloads are off for ``reason``."""
    problem = f'not in the local cache {where} ({reason}). Nothing is downloaded offline'
    remedy = fetch_elsewhere(spec, ' (e.g. a login node sharing the cache), or give a local path')
    return unavailable_error(spec, problem, remedy)


def interrupted_error(spec: WeightSpec, detail: str) -> WeightsUnavailableError:
    """A download that stopped part-way; ``detail`` says how."""
    problem = f'the download was interrupted ({detail}); nothing was cached under its final name'
    return unavailable_error(spec, problem, f'Retry: {fetch_command(spec)}')


def no_connection_error(spec: WeightSpec, where: str, detail: str) -> WeightsUnavailableError:
    """The host ``where`` could not be reached and nothing is cached; ``detail`` says why."""
    problem = f'cannot reach {where} ({detail}) and the weights are not cached'
    remedy = 'No network here? ' + fetch_elsewhere(
        spec, ' (sharing HF_HOME / RSRETRIEVAL_CACHE), then run with HF_HUB_OFFLINE=1'
    )
    return unavailable_error(spec, problem, remedy)


def first_line(err: BaseException) -> str:
    """The first non-blank line of an exception's text, else its type name."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
