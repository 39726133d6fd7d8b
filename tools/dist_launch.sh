#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: bash tools/dist_launch.sh SCRIPT NPROC [SCRIPT args]
# runs tools/SCRIPT under torchrun with --launcher pytorch. NNODES, NODE_RANK, MASTER_ADDR and
# PORT come from the environment (single node on 127.0.0.1:29500 by default).
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
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" \
    "$ROOT/tools/$SCRIPT" "${@:3}" --launcher pytorch
