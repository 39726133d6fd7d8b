"""huggingface_hub's exceptions translated into one-line :class:`WeightsUnavailableError`.

huggingface_hub raises many types, often wrapping the network error that caused
them; the message names the cause at the bottom of the chain, which is what a
user can act on. huggingface_hub and httpx2 are imported only when an error is
translated.
"""

from __future__ import annotations

from collections.abc import Iterator

from .environment import hub_cache_dir, hub_endpoint
from .errors import (
    WeightsUnavailableError,
    first_line,
    interrupted_error,
    no_connection_error,
    offline_miss_error,
    unavailable_error,
)
from .sources import WeightSpec

_LOGIN = 'log in (`hf auth login` or HF_TOKEN)'


def hub_unavailable_error(spec: WeightSpec, err: Exception, offline: str | None) -> WeightsUnavailableError:
    """Translate huggingface_hub's exception into one line.

    Args:
        spec: The Hub spec being resolved.
        err: What huggingface_hub raised.
        offline: Why downloads are off, or None when they were allowed.
    """
    from huggingface_hub import errors

    rev = spec.revision or 'main'
    status = getattr(getattr(err, 'response', None), 'status_code', None)
    if isinstance(err, errors.RevisionNotFoundError):
        return unavailable_error(
            spec, f'revision {rev!r} does not exist in Hub repo {spec.repo}', 'Check the @REVISION'
        )
    if isinstance(err, errors.GatedRepoError):
        return unavailable_error(spec, f'Hub repo {spec.repo} is gated', f'Accept its terms on its page and {_LOGIN}')
    if isinstance(err, errors.RepositoryNotFoundError):
        problem = f'Hub repo {spec.repo} does not exist or is private (HTTP {status})'
        return unavailable_error(spec, problem, f'Check ORG/NAME; for a private or gated repo {_LOGIN}')
    if isinstance(err, errors.RemoteEntryNotFoundError):
        return unavailable_error(
            spec, f'file {spec.filename!r} is not in Hub repo {spec.repo}@{rev}', 'Check the :PATH against its files'
        )
    if offline is not None and isinstance(err, (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled)):
        return offline_miss_error(spec, offline, hub_cache_dir())
    if _is_interrupted(err):
        return interrupted_error(spec, _cause_text(err))
    if _find_cause(err, _connection_types()) is not None or isinstance(err, errors.LocalEntryNotFoundError):
        return no_connection_error(spec, hub_endpoint() or 'https://huggingface.co', _cause_text(err))
    if isinstance(err, errors.HfHubHTTPError):
        return unavailable_error(spec, f'the Hub answered HTTP {status} ({first_line(err)})', 'Retry later')
    return unavailable_error(spec, f'{type(err).__name__}: {first_line(err)}')


def _connection_types() -> tuple[type[BaseException], ...]:
    import httpx2

    return (httpx2.ConnectError, httpx2.ConnectTimeout, ConnectionRefusedError)


def _is_interrupted(err: BaseException) -> bool:
    import httpx2

    partial = (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.ReadTimeout)
    if _find_cause(err, partial) is not None:
        return True
    return any('Consistency check failed' in str(e) for e in _chain(err))


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and the exceptions it was raised from or during, outermost first."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _find_cause(err: BaseException, types: tuple[type[BaseException], ...]) -> BaseException | None:
    return next((e for e in _chain(err) if isinstance(e, types)), None)


def _cause_text(err: BaseException) -> str:
    root = list(_chain(err))[-1]
    return f'{type(root).__name__}: {first_line(root)}'
