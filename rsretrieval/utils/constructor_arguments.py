"""Whether a class's constructor accepts an argument, for configs that set it only where it applies."""

from __future__ import annotations

import inspect


def takes_argument(cls: type, name: str) -> bool:
    """Whether ``cls(name=...)`` reaches a constructor that names ``name``.

    ``**kwargs`` is followed up the bases (a dataset subclass passes its
    unnamed arguments to mmengine's ``BaseDataset``); a constructor without
    ``**kwargs`` that does not name ``name`` ends the search.
    """
    for klass in cls.__mro__:
        if '__init__' not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters
        if name in parameters:
            return True
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return False
    return False
