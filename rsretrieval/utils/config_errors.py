"""The error of a config that cannot be read or overridden."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config that cannot be read, or a ``--cfg-options`` key it cannot take; one line."""
