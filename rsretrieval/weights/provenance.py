"""Where each component of a model took its initial weights from, as a table for the log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

#: The retriever attributes that hold components with their own initial weights.
COMPONENTS = ('backbone', 'text_encoder', 'fusion_head')

RANDOM_INIT = 'random init'


@dataclass(frozen=True)
class WeightSource:
    """One component's initial weights.

    Attributes:
        component: The retriever attribute (``'backbone'``, ...; ``'model'`` for a
            whole-model checkpoint such as ``CLIPRetriever.pretrained``).
        module: The component's class name.
        spec: The weights as the config names them; None for random init.
        path: The local file or folder they were read from.
        sha256: The weight file's sha256 (None when it cannot be found).
    """

    component: str
    module: str
    spec: str | None
    path: str | None = None
    sha256: str | None = None

    @property
    def is_random(self) -> bool:
        """True when the component starts from random weights."""
        return self.spec is None


def _describe(component: str, module: nn.Module, spec) -> WeightSource:
    if spec is None:
        return WeightSource(component, type(module).__name__, None)
    from .resolver import resolve_weights

    try:
        resolved = resolve_weights(str(spec), local_only=True)
    except (OSError, ValueError):  # loaded already, so only a file removed since can land here
        return WeightSource(component, type(module).__name__, str(spec))
    return WeightSource(component, type(module).__name__, str(spec), str(resolved.path), resolved.sha256)


def weight_sources(model: nn.Module) -> list[WeightSource]:
    """The initial weights of ``model``'s components (those of :data:`COMPONENTS` it has),
    then a whole-model checkpoint when the model names one (``model.pretrained``)."""
    out = []
    for name in COMPONENTS:
        module = getattr(model, name, None)
        if isinstance(module, nn.Module):
            out.append(_describe(name, module, getattr(module, 'pretrained', None)))
    if getattr(model, 'pretrained', None) is not None:
        out.append(_describe('model', model, model.pretrained))
    return out


def format_sources(sources: Sequence[WeightSource]) -> str:
    """A plain-text table: component, module, weights, file, sha256 (one row each)."""
    header = ('component', 'module', 'weights', 'file', 'sha256')
    rows = [header] + [(s.component, s.module, s.spec or RANDOM_INIT, s.path or '-', s.sha256 or '-') for s in sources]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ['  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return '\n'.join(lines)


def random_but_expected(sources: Sequence[WeightSource], expected: Sequence[str]) -> list[WeightSource]:
    """The components of ``expected`` that start from random weights."""
    return [s for s in sources if s.component in expected and s.is_random]
