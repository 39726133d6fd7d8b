"""Pretrained weights: named in configs, resolved, fetched once, verified, loaded, reported.

The names load lazily: ``rsretrieval.utils`` imports :mod:`.sources` at start-up, and
the resolver, the loader and the CLI stay unimported until they are used.
"""

from __future__ import annotations

from rsretrieval.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        'sources': ('WeightSpec', 'PACKAGED_WEIGHTS'),
        'resolver': (
            'ResolvedWeights',
            'WeightsUnavailableError',
            'resolve_weights',
            'fetch_weights',
            'check_weights',
            'find_weight_specs',
            'verify_weights',
        ),
        'zoo': ('ZooEntry', 'load_zoo', 'parse_spec'),
        'prepare': ('prepare_weights',),
        'pretrained': ('resolve_pretrained', 'read_pretrained_tensors', 'load_weights'),
        'provenance': ('WeightSource', 'weight_sources', 'format_sources'),
        'mmengine_scheme': ('register_hf_scheme',),
    },
)
