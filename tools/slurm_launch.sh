#!/usr/bin/env bash
# Shared by slurm_train.sh and slurm_test.sh: bash tools/slurm_launch.sh SCRIPT PARTITION JOB_NAME [SCRIPT args]
# GPUS (total, default 8), GPUS_PER_NODE (default 8), CPUS_PER_TASK (default 5, per GPU) and
# SRUN_ARGS (extra srun options) come from the environment.
# Default: srun starts one task per GPU (--launcher slurm); a failed task ends the job.
# ELASTIC=1: srun starts one task per node, each running torchrun (tools/dist_launch.sh) on a
# c10d rendezvous at the first node; a failed process makes torchrun restart the group on every
# node, up to MAX_RESTARTS times (default 3), and tools/train.py resumes from the newest checkpoint.
set -euo pipefail
SCRIPT=$1
PARTITION=$2
JOB_NAME=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${ELASTIC:-0}" = 1 ]; then
    NODES=$(( (GPUS + GPUS_PER_NODE - 1) / GPUS_PER_NODE ))
    # MASTER_ADDR is known inside the allocation only: each node's task looks up the first node
    # shellcheck disable=SC2016,SC2086
    exec srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
        --nodes="$NODES" --ntasks="$NODES" --ntasks-per-node=1 \
        --cpus-per-task=$(( CPUS_PER_TASK * GPUS_PER_NODE )) --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
        bash -c 'MASTER_ADDR=$(scontrol show hostnames "${SLURM_STEP_NODELIST:-$SLURM_JOB_NODELIST}" | head -n 1) \
            NNODES=$SLURM_NNODES RDZV_ID=$SLURM_JOB_ID exec bash "$0" "$@"' \
        "$ROOT/tools/dist_launch.sh" "$SCRIPT" "$GPUS_PER_NODE" "${@:4}"
fi
# shellcheck disable=SC2086
PYTHONPATH="$ROOT:${PYTHONPATH:-}" srun -p "$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    python -u "$ROOT/tools/$SCRIPT" "${@:4}" --launcher slurm
