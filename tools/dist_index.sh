#!/usr/bin/env bash
# Indexing on torchrun: bash tools/dist_index.sh NPROC CONFIG [CHECKPOINT] IMAGE_DIR INDEX_DIR [index options]
# Each process encodes a block of the images into INDEX_DIR/parts, rank 0 merges the parts into
# the index (docs/retrieval.md). The same command resumes, with any number of processes.
# NNODES, MASTER_ADDR, PORT and RDZV_ID as for tools/dist_train.sh (tools/dist_launch.sh).
# MAX_RESTARTS defaults to 0 here: an unreadable file or a wrong checkpoint fails on every
# attempt; with MAX_RESTARTS=3 a crashed process makes torchrun restart the group, which resumes.
set -euo pipefail
export MAX_RESTARTS=${MAX_RESTARTS:-0}
exec bash "$(dirname "$0")/dist_launch.sh" retrieve.py "$1" index "${@:2}"
