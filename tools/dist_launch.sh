#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: bash tools/dist_launch.sh SCRIPT NPROC [SCRIPT args]
# runs tools/SCRIPT under torchrun with --launcher pytorch, on torchrun's c10d rendezvous:
# when a process fails, torchrun stops the others and starts the group again, up to
# MAX_RESTARTS times (default 3; 0 turns restarts off), and tools/train.py resumes from the
# newest checkpoint. From the environment:
#   NNODES       nodes (default 1), or MIN:MAX for an elastic number of nodes
#   MASTER_ADDR  host of the rendezvous, the same on every node (default 127.0.0.1)
#   PORT         its port (default 29500)
#   RDZV_ID      the job's name in the rendezvous, the same on every node
#                (default: $SLURM_JOB_ID under Slurm, else rsretrieval)
#   NODE_RANK    accepted and not needed: the rendezvous numbers the nodes
set -euo pipefail
SCRIPT=$1
NPROC=$2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python}
if [ -x "$ROOT/.venv/bin/python" ] && [ -z "${VIRTUAL_ENV:-}" ] && [ "$PYTHON" = python ]; then
    PYTHON="$ROOT/.venv/bin/python"
fi
# One intra-op thread per process unless told otherwise (the processes share the cores).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# Each attempt gets its own store: torch's agent store, shared across restarts, keeps the
# previous attempt's addresses, and the restarted processes can connect to those
# (pytorch/pytorch#135712: gloo "connectFullMesh failed", NCCL "Failed to connect").
export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=${TORCH_DISABLE_SHARE_RDZV_TCP_STORE:-1}
# torchrun, less its traceback when it is stopped by a signal (SIGTERM, Ctrl-C): it forwards
# the signal, each process says in one line how it stopped, and the status is 128 + signal.
TORCHRUN='import sys
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.run import main
try:
    main()
except SignalException as err:
    sys.exit(128 + int(err.sigval))'
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "$PYTHON" -c "$TORCHRUN" \
    --nnodes="${NNODES:-1}" --nproc-per-node="$NPROC" --max-restarts="${MAX_RESTARTS:-3}" \
    --rdzv-backend=c10d --rdzv-endpoint="${MASTER_ADDR:-127.0.0.1}:${PORT:-29500}" \
    --rdzv-id="${RDZV_ID:-${SLURM_JOB_ID:-rsretrieval}}" \
    "$ROOT/tools/$SCRIPT" "${@:3}" --launcher pytorch
