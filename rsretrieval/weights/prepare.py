"""Every weight a config names, made available before the model is built."""

from __future__ import annotations

from collections.abc import Mapping

from .resolver import ResolvedWeights, WeightsUnavailableError, find_weight_specs, resolve_weights


def weights_by_spec(cfg: Mapping) -> dict[str, list[str]]:
    """``{spec: [config keys naming it]}`` for the weights in ``cfg['model']``, in config order."""
    named: dict[str, list[str]] = {}
    for key, spec in find_weight_specs(cfg):
        named.setdefault(str(spec), []).append(key)
    return named


def prepare_weights(cfg: Mapping) -> list[ResolvedWeights]:
    """Resolve (fetch once, where the network is allowed) every weight the config's
    model names, so that building the model reads only local files.

    Raises:
        WeightsUnavailableError: One line naming every weight that could not be had,
            the config keys that name it, why, and the one command that fetches them.
    """
    resolved, failed = [], []
    for spec, keys in weights_by_spec(cfg).items():
        try:
            resolved.append(resolve_weights(spec))
        except WeightsUnavailableError as err:
            failed.append((spec, keys, err))
    if failed:
        raise WeightsUnavailableError(_failure_line(failed))
    return resolved


def _failure_line(failed: list[tuple[str, list[str], WeightsUnavailableError]]) -> str:
    if len(failed) == 1:
        spec, keys, err = failed[0]
        return f'{err} (named by {", ".join(keys)})'
    reasons = '; '.join(f'{spec} ({", ".join(keys)}): {err.problem}' for spec, keys, err in failed)
    names = ' '.join(spec for spec, _, _ in failed)
    return (
        f'{len(failed)} pretrained weights the config names are not available: {reasons}. '
        f'Fetch them on a machine with network: `rsretrieval-weights fetch {names}` '
        '(the Hugging Face cache: share HF_HOME with this machine), or name local paths instead'
    )
