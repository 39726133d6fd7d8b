"""On/off switches read from the environment."""

from __future__ import annotations

import os


def env_switch(name: str) -> bool | None:
    """The switch ``name``: True for ``1``, False for ``0``, None when unset or empty.

    Raises:
        ValueError: It holds anything else, naming the variable and its value.
    """
    value = os.environ.get(name, '').strip()
    if value not in ('', '0', '1'):
        raise ValueError(f'{name} must be 0 or 1, got {value!r}')
    return None if not value else value == '1'
