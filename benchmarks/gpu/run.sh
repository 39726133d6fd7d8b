#!/usr/bin/env bash
# Run ON THE GPU MACHINE (see prepare.sh): the training-step and end-to-end evaluation
# benchmarks of issue 11 on one H100/H200. Each step has a timeout; together they stay inside one
# 10-minute device command (not yet run on a GPU). Results go to $OUT (or ./gpu_out).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
TOK=.bench_assets/tokenizer
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c 'import torch, transformers, timm, mmengine; print(torch.__version__, transformers.__version__, timm.__version__, mmengine.__version__)'
} 2>&1 | tee "$OUT/env.txt"
# training step: Gswin vs timm Swin-T, batch 64 and 16, bf16 and fp32 (paper size: BERT-base 6 + 6)
timeout 240 python3 benchmarks/train_step.py --tokenizer $TOK --batch-sizes 64 16 --dtypes bf16 fp32 \
    --iters 10 --warmup 3 --json "$OUT/train_step.json" 2>&1 | tee "$OUT/train_step.txt"
# the same at batch 64 bf16 reading every loss each step (the cost of per-step host syncs)
timeout 90 python3 benchmarks/train_step.py --tokenizer $TOK --batch-sizes 64 --dtypes bf16 --sync-every-step \
    --iters 10 --json "$OUT/train_step_sync.json" 2>&1 | tee "$OUT/train_step_sync.txt"
# evaluation of an RSICD-sized test set end to end, with SMR (bf16 encoding, then fp32)
timeout 150 python3 benchmarks/eval.py --text bert-base --tokenizer $TOK --amp --workers 12 --batch-size 128 \
    --json "$OUT/eval_bf16.json" 2>&1 | tee "$OUT/eval_bf16.txt"
timeout 100 python3 benchmarks/eval.py --text bert-base --tokenizer $TOK --workers 12 --batch-size 128 \
    --json "$OUT/eval_fp32.json" 2>&1 | tee "$OUT/eval_fp32.txt"
