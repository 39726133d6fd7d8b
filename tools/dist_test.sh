#!/usr/bin/env bash
# Distributed evaluation on torchrun: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# Multi-node: set NNODES, MASTER_ADDR and PORT on every node (see tools/dist_launch.sh).
# Without CUDA the processes use gloo on the CPU. A failed evaluation is not restarted unless
# MAX_RESTARTS is set.
set -euo pipefail
export MAX_RESTARTS=${MAX_RESTARTS:-0}
exec bash "$(dirname "$0")/dist_launch.sh" test.py "$3" "$1" "$2" "${@:4}"
