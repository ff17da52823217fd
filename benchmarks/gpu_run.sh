#!/usr/bin/env bash
# The GPU benchmarks in one run (about 8 minutes) on a machine with PyTorch and JAX but no
# TensorFlow and no network. Keras and the two packages it needs that such a machine lacks
# travel as wheels in ./.whl; results go to $OUT (default ./gpu-out). Fetch the wheels first,
# on a machine with network access:
#
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0
#   bash benchmarks/gpu_run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
PY=${PY:-python3}
mkdir -p "$OUT"
WORK=$(mktemp -d)
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false KERAS_BACKEND=torch  # no TensorFlow there
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl || exit 1
    export PYTHONPATH=$WORK/site:$PWD
else
    export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import keras, torch, jax; print('keras', keras.__version__, 'torch', torch.__version__, 'jax', jax.__version__)" | tee -a "$OUT/gpu.txt"

# One synthetic data set for every step: 138 lung-like images at 128×128, as in the paper.
DATA=$WORK/lungs.h5
$PY -c "import sys; sys.path.insert(0, 'benchmarks'); from pathlib import Path; \
from input_pipeline import synthetic_lungs; synthetic_lungs(Path(sys.argv[1]), 138, 128)" "$DATA" || exit 1

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
