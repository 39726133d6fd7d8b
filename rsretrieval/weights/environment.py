"""The network and cache settings, read from the environment when a call is made.

huggingface_hub reads its variables once, at import; reading them per call lets a
test or a long-lived process change them (``HF_HUB_OFFLINE``, ``HF_ENDPOINT``,
``HF_HOME``) and be obeyed.
"""

from __future__ import annotations

import os
import sys

_TRUE = {'1', 'ON', 'YES', 'TRUE'}


def offline_reason(local_only: bool = False) -> str | None:
    """Why the network is off (``'HF_HUB_OFFLINE=1 is set'``, ...), or None when it may be used."""
    for var in ('RSRETRIEVAL_OFFLINE', 'HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'):
        if os.environ.get(var, '').strip().upper() in _TRUE:
            return f'{var}=1 is set'
    constants = sys.modules.get('huggingface_hub.constants')
    if constants is not None and constants.HF_HUB_OFFLINE:
        # huggingface_hub read HF_HUB_OFFLINE when it was imported and refuses requests since.
        return 'HF_HUB_OFFLINE=1 was set when huggingface_hub was imported'
    return 'checked without network' if local_only else None


def hub_cache_dir() -> str:
    """huggingface_hub's cache folder, following its variables as they are now."""
    env = os.environ
    for var in ('HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE'):
        if env.get(var):
            return os.path.expandvars(os.path.expanduser(env[var]))
    if env.get('HF_HOME'):
        return os.path.join(os.path.expandvars(os.path.expanduser(env['HF_HOME'])), 'hub')
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def hub_endpoint() -> str | None:
    """``$HF_ENDPOINT`` as it is now (huggingface_hub reads it once, at import)."""
    value = os.environ.get('HF_ENDPOINT', '').strip().rstrip('/')
    return value or None
