"""Registries of rsretrieval.

Runner-facing registries (``MODELS``, ``DATASETS``, ...) are children of
mmengine's roots so that ``Runner.from_cfg`` resolves them under
``default_scope='rsretrieval'``. Component registries (``BACKBONES``,
``TEXT_ENCODERS``, ``FUSION_HEADS``, ``LOSSES``, ``RERANKERS``) and
``ANNOTATION_FORMATS`` (read by the datasets, by ``ann_format`` name) are roots of
their own, each with scope ``rsretrieval``: mmengine keeps at most one child per
scope under a parent, and a root that carries the scope name is found by the
scope switch that ``build`` performs.

Every registry imports its implementation package lazily (``locations=``),
loads installed plugins (entry points ``rsretrieval.plugins``, see
:mod:`rsretrieval.plugins`) the first time a lookup misses, refuses a name that
is already taken unless ``force=True``, and reports the registered names when a
``type`` is unknown.
"""

from __future__ import annotations

from typing import Any

from mmengine import registry as mmengine_registry
from mmengine.registry import Registry as _MMRegistry

from rsretrieval.plugins import load_plugins, plugins_loaded

SCOPE = 'rsretrieval'


class Registry(_MMRegistry):
    """mmengine ``Registry`` with plugin discovery and clearer errors.

    - ``get`` loads the installed plugins when a name is not found, then looks
      again (so an installed plugin needs no ``custom_imports``).
    - Registering a name that is taken raises, naming both classes, unless
      ``register_module(force=True)``; the library's own classes are imported
      first, so a clash with a built-in is detected whatever the import order.
    - ``build`` with an unknown ``type`` lists the registered names.
    """

    def registered_names(self) -> list[str]:
        """Names registered here (after importing ``locations`` and the plugins)."""
        self.import_from_location()
        load_plugins()
        return sorted(self.module_dict)

    def get(self, key: str) -> Any:
        obj = super().get(key)
        if obj is None and isinstance(key, str) and not plugins_loaded():
            load_plugins()
            obj = super().get(key)
        return obj

    def _register_module(self, module: type, module_name: str | list[str] | None = None, force: bool = False) -> None:
        if not getattr(module, '__module__', '').startswith(f'{SCOPE}.'):
            self.import_from_location()  # built-ins first: their names are taken before a plugin's
        names = [module_name] if isinstance(module_name, str) else module_name or [module.__name__]
        for name in names:
            existing = self._module_dict.get(name)
            if not force and existing is not None and existing is not module:
                raise KeyError(
                    f'{name!r} is already registered in the {self.name} registry by '
                    f'{existing.__module__}.{existing.__qualname__}; cannot register '
                    f'{module.__module__}.{module.__qualname__} under the same name. Choose another '
                    'name, or replace the registered class with register_module(force=True).'
                )
        super()._register_module(module, names, force=True)

    def build(self, cfg: dict, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().build(cfg, *args, **kwargs)
        except KeyError:
            obj_type = cfg.get('type') if isinstance(cfg, dict) else None
            if not isinstance(obj_type, str) or self.get(obj_type) is not None:
                raise
            names = ', '.join(self.registered_names()) or '(none)'
            raise KeyError(
                f'Unknown {self.name} type {obj_type!r}. Registered {self.name} '
                f'types in scope {self.scope!r}: {names}. A component from another '
                'package must be imported first (config key `custom_imports`) or be '
                'installed with an `rsretrieval.plugins` entry point.'
            ) from None


def _child(name: str, parent: _MMRegistry, *locations: str) -> Registry:
    return Registry(name, parent=parent, scope=SCOPE, locations=list(locations))


def _root(name: str, *locations: str) -> Registry:
    return Registry(name, scope=SCOPE, locations=list(locations))


_mm = mmengine_registry

# Runner-facing registries.
MODELS = _child('model', _mm.MODELS, 'rsretrieval.models')
DATASETS = _child('dataset', _mm.DATASETS, 'rsretrieval.datasets')
TRANSFORMS = _child('transform', _mm.TRANSFORMS, 'rsretrieval.datasets.transforms')
METRICS = _child('metric', _mm.METRICS, 'rsretrieval.evaluation')
HOOKS = _child('hook', _mm.HOOKS, 'rsretrieval.engine')
LOOPS = _child('loop', _mm.LOOPS, 'rsretrieval.engine')

# Children with nothing of our own, so the Runner finds the rsretrieval scope
# in every registry it builds from (mmengine's classes resolve via the parent).
RUNNERS = _child('runner', _mm.RUNNERS)
RUNNER_CONSTRUCTORS = _child('runner constructor', _mm.RUNNER_CONSTRUCTORS)
DATA_SAMPLERS = _child('data sampler', _mm.DATA_SAMPLERS, 'rsretrieval.datasets')
MODEL_WRAPPERS = _child('model_wrapper', _mm.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child('weight initializer', _mm.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child('optimizer', _mm.OPTIMIZERS)
OPTIM_WRAPPERS = _child('optim_wrapper', _mm.OPTIM_WRAPPERS, 'rsretrieval.engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor', _mm.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child('parameter scheduler', _mm.PARAM_SCHEDULERS)
EVALUATOR = _child('evaluator', _mm.EVALUATOR)
VISUALIZERS = _child('visualizer', _mm.VISUALIZERS)
VISBACKENDS = _child('vis_backend', _mm.VISBACKENDS)
LOG_PROCESSORS = _child('log_processor', _mm.LOG_PROCESSORS)
FUNCTIONS = _child('function', _mm.FUNCTIONS, 'rsretrieval.engine.stop_signals')

# Component registries (built by the models themselves).
BACKBONES = _root('backbone', 'rsretrieval.models.backbones')
TEXT_ENCODERS = _root('text_encoder', 'rsretrieval.models.text_encoders')
FUSION_HEADS = _root('fusion_head', 'rsretrieval.models.fusion_heads')
LOSSES = _root('loss', 'rsretrieval.models.losses')
RERANKERS = _root('reranker', 'rsretrieval.rerankers')

# Looked up by the datasets through their ``ann_format`` argument.
ANNOTATION_FORMATS = _root('annotation_format', 'rsretrieval.datasets.annotation_formats')

__all__ = [
    'ANNOTATION_FORMATS',
    'BACKBONES',
    'DATASETS',
    'FUSION_HEADS',
    'HOOKS',
    'LOOPS',
    'LOSSES',
    'METRICS',
    'MODELS',
    'RERANKERS',
    'Registry',
    'TEXT_ENCODERS',
    'TRANSFORMS',
]
