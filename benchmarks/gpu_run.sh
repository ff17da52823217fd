#!/usr/bin/env bash
# The GPU benchmarks in one run (about 8 minutes) on a machine with PyTorch and JAX but no
# TensorFlow and no network. Keras and the two packages it needs that such a machine lacks
# travel as wheels in ./.whl (see docs/benchmarks.md); results go to $OUT (default ./gpu-out).
#
#   bash benchmarks/gpu_run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false KERAS_BACKEND=torch  # no TensorFlow there
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import keras, torch, jax; print('keras', keras.__version__, 'torch', torch.__version__, 'jax', jax.__version__)" | tee -a "$OUT/gpu.txt"

# One synthetic data set for every step: 138 lung-like images at 128×128, as in the paper.
$PY -c "import sys; sys.path.insert(0, 'benchmarks'); from pathlib import Path; \
from input_pipeline import synthetic_lungs; synthetic_lungs(Path('/tmp/gpu-bench/lungs.h5'), 138, 128)" || exit 1
DATA=/tmp/gpu-bench/lungs.h5

step() {  # step NAME SECONDS BACKEND SCRIPT ARGS...: one benchmark, cut off after SECONDS
    local name=$1 limit=$2 backend=$3
    shift 3
    echo "== $name ($backend, at most ${limit} s)"
    KERAS_BACKEND=$backend timeout "$limit" $PY "$@" --data "$DATA" 2>"$OUT/$name.err" | tee "$OUT/$name.jsonl"
    tail -n 3 "$OUT/$name.err"
}
step input_torch 75 torch benchmarks/input_pipeline.py --epochs 3 --rounds 2 --precisions float32,mixed_bfloat16
step input_jax 75 jax benchmarks/input_pipeline.py --epochs 3 --rounds 2 --precisions float32,mixed_bfloat16
step search_torch 200 torch benchmarks/gpu_search.py --budget-s 170
step search_jax 110 jax benchmarks/gpu_search.py --budget-s 80
