#!/usr/bin/env bash
# Distributed training on torchrun: bash tools/dist_train.sh CONFIG GPUS [train.py options]
# A failed process makes torchrun restart the group (MAX_RESTARTS, default 3), which resumes
# from the newest checkpoint. Multi-node: set NNODES, MASTER_ADDR and PORT on every node
# (see tools/dist_launch.sh). Without CUDA the processes use gloo on the CPU (one process per "GPU").
set -euo pipefail
exec bash "$(dirname "$0")/dist_launch.sh" train.py "$2" "$1" "${@:3}"
