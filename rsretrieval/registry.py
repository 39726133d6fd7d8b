"""Registries of rsretrieval.

Runner-facing registries (``MODELS``, ``DATASETS``, ...) are children of
mmengine's roots so that ``Runner.from_cfg`` resolves them under
``default_scope='rsretrieval'``. Component registries (``BACKBONES``,
``TEXT_ENCODERS``, ``FUSION_HEADS``, ``LOSSES``, ``RERANKERS``) are roots of
their own, each with scope ``rsretrieval``: mmengine keeps at most one child per
scope under a parent, and a root that carries the scope name is found by the
scope switch that ``build`` performs.

Every registry imports its implementation package lazily (``locations=``) and
reports the registered names when a ``type`` is unknown.
"""

from __future__ import annotations

from typing import Any

from mmengine import registry as mmengine_registry
from mmengine.registry import Registry as _MMRegistry

SCOPE = 'rsretrieval'


class Registry(_MMRegistry):
    """mmengine ``Registry`` whose unknown-type error lists the known names."""

    def registered_names(self) -> list[str]:
        """Names registered here (after importing ``locations``)."""
        self.import_from_location()
        return sorted(self.module_dict)

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
                'package must be imported first (config key `custom_imports`).'
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
DATA_SAMPLERS = _child('data sampler', _mm.DATA_SAMPLERS)
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
FUNCTIONS = _child('function', _mm.FUNCTIONS)

# Component registries (built by the models themselves).
BACKBONES = _root('backbone', 'rsretrieval.models.backbones')
TEXT_ENCODERS = _root('text_encoder', 'rsretrieval.models.text_encoders')
FUSION_HEADS = _root('fusion_head', 'rsretrieval.models.fusion_heads')
LOSSES = _root('loss', 'rsretrieval.models.losses')
RERANKERS = _root('reranker', 'rsretrieval.rerankers')

__all__ = [
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
