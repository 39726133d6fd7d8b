"""Registering every rsretrieval module and setting the default scope."""

from __future__ import annotations

import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every rsretrieval module so that its registries are filled, and teach
    mmengine's checkpoint loader the ``hf-hub:`` scheme.

    Args:
        init_default_scope: Also make ``rsretrieval`` the current default
            scope (needed when building from registries outside a Runner).
    """
    import rsretrieval.datasets  # noqa: F401
    import rsretrieval.datasets.transforms  # noqa: F401
    import rsretrieval.engine  # noqa: F401
    import rsretrieval.evaluation  # noqa: F401
    import rsretrieval.models  # noqa: F401
    import rsretrieval.rerankers  # noqa: F401
    from rsretrieval.weights.mmengine_scheme import register_hf_scheme

    # `hf-hub:` names in init_cfg=dict(type='Pretrained', checkpoint=...) and load_from
    register_hf_scheme()
    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('rsretrieval', scope_name='rsretrieval')
    elif current.scope_name != 'rsretrieval':
        warnings.warn(
            f'The current default scope {current.scope_name!r} is not rsretrieval; '
            'a new scope is created and made current.',
            stacklevel=2,
        )
        name = f'rsretrieval-{datetime.datetime.now()}'
        DefaultScope.get_instance(name, scope_name='rsretrieval')
