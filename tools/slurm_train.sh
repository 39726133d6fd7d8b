#!/usr/bin/env bash
# Training on Slurm: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS and ELASTIC=1 (torchrun per node, restarts):
# see tools/slurm_launch.sh.
set -euo pipefail
exec bash "$(dirname "$0")/slurm_launch.sh" train.py "$1" "$2" "$3" "${@:4}"
