"""One line for a collective operation that failed because another process did."""

from __future__ import annotations

import os
import re
from types import TracebackType

# gloo: "Timed out waiting 20000ms for recv operation to complete"; NCCL (blocking wait): "... timed out"
_TIMEOUT = re.compile(r'timed out waiting (\d+) ?ms|\btimed out\b|\btimeout\b', re.IGNORECASE)
# gloo and NCCL when the process at the other end of a connection is gone
_LOST = ('connection reset by peer', 'connection closed by peer', 'broken pipe', 'connection refused')


def collective_failure(err: BaseException, iteration: int | None = None) -> str | None:
    """Describe ``err`` in one line when it is a collective that timed out or lost a peer.

    A process that waits in a collective (DDP's gradient all-reduce, an
    all-gather, a barrier) longer than the process group's timeout
    (``env_cfg.dist_cfg.timeout``) raises; one whose peer is gone raises at
    once. The line names this rank, the operation and where it was called,
    what the others did and what happens next (torchrun's restart).

    Args:
        err: The exception.
        iteration: The training iteration it happened in, if any.

    Returns:
        The line, or None for any other error (raise it as it is).
    """
    if not isinstance(err, RuntimeError):
        return None
    text = str(err)
    operation = _operation(err.__traceback__)
    if operation is None and not re.search(r'gloo|nccl', text, re.IGNORECASE):
        return None  # not from torch.distributed (a data loader's timeout, say)
    timed_out = _TIMEOUT.search(text)
    if timed_out:
        waited = f' after {int(timed_out.group(1)) / 1000:g} s' if timed_out.group(1) else ''
        what, cause = (
            f'timed out{waited} (env_cfg.dist_cfg.timeout)',
            'stopped responding (stopped, hung or far slower)',
        )
    elif any(sign in text.lower() for sign in _LOST):
        what, cause = 'lost its connection', 'has ended (killed or crashed)'
    else:
        return None
    rank, world = _rank_and_world()
    others = f'rank {1 - rank}' if world == 2 else f'one of the other {world - 1} ranks'
    when = f' in iteration {iteration}' if iteration is not None else ''
    then = (
        'torchrun restarts the run from the newest checkpoint while restarts remain (MAX_RESTARTS)'
        if 'TORCHELASTIC_RUN_ID' in os.environ
        else 'continue with the same command and --resume'
    )
    return f'rank {rank} of {world}: {operation or "a collective operation"} {what}{when}: {others} {cause}; {then}'


def _rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))


def _operation(tb: TracebackType | None) -> str | None:
    """The collective in the traceback and the project code that called it, or None."""
    operation, caller = None, None
    while tb is not None and operation is None:
        code = tb.tb_frame.f_code
        path = code.co_filename.replace(os.sep, '/')
        if path.endswith('torch/distributed/distributed_c10d.py'):
            operation = code.co_name
        elif code.co_name == 'backward' and path.endswith('torch/_tensor.py'):
            operation = "DDP's gradient all-reduce (backward pass)"
        elif '/rsretrieval/' in path:
            caller = f'{os.path.basename(path)}:{tb.tb_lineno} ({code.co_name})'
        tb = tb.tb_next
    if operation is None:
        return None
    return f'{operation} called from {caller}' if caller else operation
