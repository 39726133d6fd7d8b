"""Overriding a config from the command line (``--cfg-options``): checked, then merged."""

from __future__ import annotations

from mmengine.config import Config

from .config_errors import ConfigError
from .config_variables import PROPAGATED_VARIABLES, replace_values


def merge_cfg_options(cfg: Config, options: dict | None) -> Config:
    """Check ``--cfg-options`` (:func:`check_cfg_options`) and merge them into ``cfg``
    (:func:`apply_cfg_options`)."""
    if not options:
        return cfg
    check_cfg_options(cfg, dict(options))
    return apply_cfg_options(cfg, options)


def apply_cfg_options(cfg: Config, options: dict | None) -> Config:
    """Merge ``--cfg-options`` into ``cfg``; some top-level variables propagate.

    A Python config resolves its variables when it is read, so overriding the
    top-level ``data_root`` alone would change nothing. For each variable of
    :data:`PROPAGATED_VARIABLES` that is overridden, every nested key that held
    the config's value is set to the new one: ``--cfg-options data_root=PATH``
    moves the whole dataset, ``text_weights=PATH`` the text encoder and the
    fusion encoder together, ``image_weights=NAME`` the image backbone. A config
    read with :func:`~rsretrieval.utils.config_files.read_config` has its copies
    at its own value already, also where a child config changed the variable.
    """
    if not options:
        return cfg
    options = dict(options)
    moved = {name: options.pop(name) for name in PROPAGATED_VARIABLES if name in options}
    cfg.merge_from_dict(options)
    if moved:
        as_dict = cfg.to_dict()
        for name, new in moved.items():
            old = cfg.get(name)
            if old is not None:
                replace_values(as_dict, PROPAGATED_VARIABLES[name], old, new)
            as_dict[name] = new
        cfg = Config(as_dict, filename=cfg.filename)
    return cfg


#: Top-level keys the Runner reads that a config may leave out.
RUNNER_ONLY_KEYS = frozenset({'find_unused_parameters', 'model_wrapper_cfg', 'compile', 'cfg', 'launcher'})


def _runner_keys() -> set[str]:
    import inspect

    from mmengine.runner import Runner

    return set(inspect.signature(Runner.__init__).parameters) - {'self'} | RUNNER_ONLY_KEYS


def _registered_class(name: str):
    """The class registered as ``name`` in any rsretrieval registry (or mmengine's), or None."""
    from rsretrieval import registry

    for reg in (
        registry.MODELS,
        registry.BACKBONES,
        registry.TEXT_ENCODERS,
        registry.FUSION_HEADS,
        registry.LOSSES,
        registry.RERANKERS,
        registry.DATASETS,
        registry.TRANSFORMS,
        registry.HOOKS,
        registry.LOOPS,
        registry.METRICS,
        registry.OPTIM_WRAPPERS,
        registry.OPTIMIZERS,
        registry.PARAM_SCHEDULERS,
        registry.DATA_SAMPLERS,
    ):
        try:
            cls = reg.get(name)
        except Exception:  # a registry whose lazy import fails says nothing here
            cls = None
        if cls is not None:
            return cls
    return None


def _closed_arguments(cls) -> set[str] | None:
    """The constructor arguments of ``cls``, or None when it takes ``**kwargs`` (open)."""
    import inspect

    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def check_cfg_options(cfg: Config, options: dict) -> None:
    """Refuse ``--cfg-options`` keys that would be silently ignored or fail later.

    - A top-level key that the config does not have and the Runner does not read
      (``data_rot`` for ``data_root``) is refused, with the closest existing key.
    - A nested key that is new where the enclosing dict has a ``type`` whose
      constructor takes a fixed set of arguments (``model.no_such_key``) is
      refused, naming the component and its closest argument. Keys the config
      already has, and new keys of components that take ``**kwargs``, pass
      (``model.backbone.pretrained=PATH`` sets an argument the config leaves out).

    Raises:
        ConfigError: One line naming the key.
    """
    import difflib

    tree = cfg.to_dict()
    runner_keys = None
    for dotted in options:
        parts = str(dotted).split('.')
        top = parts[0]
        if top not in tree:
            runner_keys = runner_keys if runner_keys is not None else _runner_keys()
            if top in runner_keys:
                continue
            known = sorted(k for k in tree if not k.startswith('_')) + sorted(runner_keys)
            close = difflib.get_close_matches(top, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ''
            raise ConfigError(f"--cfg-options {dotted}: the config has no top-level key '{top}'{hint}")
        node = tree
        for part in parts[:-1]:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                node = None  # a new branch: nothing to check it against
                break
        leaf = parts[-1]
        if not isinstance(node, dict) or leaf in node or not isinstance(node.get('type'), str):
            continue
        cls = _registered_class(node['type'])
        accepted = _closed_arguments(cls) if cls is not None else None
        if accepted is None or leaf in accepted:
            continue
        close = difflib.get_close_matches(leaf, sorted(accepted), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f'; it takes {", ".join(sorted(accepted))}'
        raise ConfigError(f"--cfg-options {dotted}: {node['type']} takes no argument '{leaf}'{hint}")
