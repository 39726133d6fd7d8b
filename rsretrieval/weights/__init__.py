"""Pretrained weights: named in configs, resolved, fetched once, verified, loaded, reported.

The names load lazily: ``rsretrieval.utils`` imports :mod:`.sources` at start-up, and
the resolver, the loader and the CLI stay unimported until they are used.
"""

from __future__ import annotations

from rsretrieval.lazy_exports import lazy_getattr

_EXPORTS = {
    'WeightSpec': 'sources',
    'parse_spec': 'sources',
    'PACKAGED_WEIGHTS': 'sources',
    'ResolvedWeights': 'resolver',
    'WeightsUnavailableError': 'resolver',
    'resolve_weights': 'resolver',
    'fetch_weights': 'resolver',
    'check_weights': 'resolver',
    'find_weight_specs': 'resolver',
    'verify_weights': 'resolver',
    'ZooEntry': 'zoo',
    'load_zoo': 'zoo',
    'prepare_weights': 'prepare',
    'WeightSource': 'provenance',
    'weight_sources': 'provenance',
    'format_sources': 'provenance',
    'register_hf_scheme': 'mmengine_scheme',
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
