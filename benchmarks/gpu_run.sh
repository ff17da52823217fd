#!/usr/bin/env bash
# The GPU benchmarks in one run (about 10 minutes) on a machine with PyTorch and JAX but no
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
$PY -c "import sys; sys.path.insert(0, 'benchmarks'); from common import synthetic_dataset; \
synthetic_dataset(sys.argv[1], 'lungs', 138, seed=0, image_size=128, size=256)" "$WORK" || exit 1

step() {  # step NAME SECONDS BACKEND SCRIPT ARGS...: one benchmark, cut off after SECONDS
    local name=$1 limit=$2 backend=$3
    shift 3
    echo "== $name ($backend, at most ${limit} s)"
    KERAS_BACKEND=$backend timeout "$limit" $PY "$@" --data "$DATA" 2>"$OUT/$name.err" | tee "$OUT/$name.jsonl"
    tail -n 3 "$OUT/$name.err"
}
# JAX and mixed precision were measured before (docs/benchmarks.md) and are left out here.
step input_torch 75 torch benchmarks/input_pipeline.py --epochs 3 --rounds 2 --precisions float32

# Framework overhead on the GPU: the genome's Keras model (Keras steps, execution torch)
# against plain PyTorch modules.
echo "== framework_overhead (torch, at most 90 s)"
timeout 90 $PY benchmarks/framework_overhead.py --rounds 5 2>"$OUT/framework_overhead.err" | tee "$OUT/framework_overhead.jsonl"

# K concurrent searches at the paper's settings on the one GPU, one CPU thread each, as
# gpus.jobs_per_gpu = K would run them: aggregate evaluations per hour, K = 1, 4, 8, 16.
for K in 1 4 8 16; do
    echo "== searches_k$K (torch, $K at once, at most 100 s)"
    for i in $(seq "$K"); do
        OMP_NUM_THREADS=1 timeout 100 $PY benchmarks/gpu_search.py --budget-s 75 --execution torch --data "$DATA" \
            >"$OUT/searches_k${K}_$i.jsonl" 2>"$OUT/searches_k${K}_$i.err" &
    done
    wait
    tail -qn 1 "$OUT"/searches_k${K}_*.jsonl
done
# S(K) = aggregate evaluations per hour of K searches / that of one: the input of paper_dag.py.
$PY - "$OUT" <<'PY' | tee "$OUT/sharing.json"
import glob, json, sys
rate = {}
for k in (1, 4, 8, 16):
    rows = [json.loads(open(f).read().splitlines()[-1]) for f in glob.glob(f"{sys.argv[1]}/searches_k{k}_*.jsonl")]
    rows = [r for r in rows if r.get("benchmark") == "gpu_search"]
    if rows:
        rate[k] = sum(3600 / r["seconds_per_evaluation"] for r in rows)
print(json.dumps({k: round(v / rate[1], 3) for k, v in rate.items()} if 1 in rate else {}))
PY
# The prediction needs snakemake for the DAG; where it is missing, run it where it is:
#   python benchmarks/paper_dag.py --sharing gpu-out/sharing.json
$PY -c "import snakemake" 2>/dev/null && $PY benchmarks/paper_dag.py --sharing "$OUT/sharing.json" | tee "$OUT/paper_dag.jsonl"
