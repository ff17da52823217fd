#!/usr/bin/env bash
# Entry points of the project; each one first does every set-up step it needs.
#   ./run.sh setup          create .venv and install the locked dependencies and the package
#   ./run.sh demo [ARGS]    run the whole workflow on built-in synthetic data (presets/demo.yaml)
#   ./run.sh fast [ARGS]    run the unit tests, the fast lane (under 3 minutes on 2 cores)
#   ./run.sh slow [ARGS]    run the long tests (marked slow, e2e, cluster or browser) that fast leaves out
#   ./run.sh test [ARGS]    run the whole test suite, fast and slow (ARGS go to pytest, except -m)
#   ./run.sh claims [ARGS]  test the paper's claims on real and synthetic images (presets/claims.yaml)
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-python3}
venv=.venv

setup() {
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv "$venv"
    fi
    local stamp="$venv/.installed" want
    want=$(cat requirements.lock requirements-torch.lock pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        "$venv/bin/python" -m pip install --quiet --upgrade pip
        # --no-deps: the lock names every package, so two installs are identical.
        "$venv/bin/python" -m pip install --quiet --no-deps -r requirements.lock
        "$venv/bin/python" -m pip install --quiet --no-deps -r requirements-torch.lock
        "$venv/bin/python" -m pip install --quiet --no-deps -e .
        "$venv/bin/python" -m pip check
        echo "$want" > "$stamp"
    fi
    export PATH="$PWD/$venv/bin:$PATH"
    export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
}

# The marks of the long tests: ./run.sh fast leaves them out, ./run.sh slow runs only them.
long="slow or e2e or cluster or browser"

# pytest's status 5 (no test selected) is no failure: a lane may hold no TensorFlow test.
pytest_run() {
    local rc=0
    python -m pytest "$@" || rc=$?
    [ "$rc" -eq 5 ] && rc=0
    return "$rc"
}

# One lane of tests, $1 a marker expression (empty: every test), the rest pytest's arguments. Two
# pytest processes: the tests on the workflow's Keras backend (tests/conftest.py), then those
# marked `tensorflow` on TensorFlow; the lane fails if either does.
lane() {
    local marks=$1 own="not tensorflow" tf="tensorflow" rc=0
    shift
    if [ -n "$marks" ]; then own="($marks) and $own"; tf="($marks) and $tf"; fi
    pytest_run -m "$own" "$@" || rc=$?
    KERAS_BACKEND=tensorflow pytest_run -m "$tf" "$@" || rc=$?
    return "$rc"
}

case "${1:-}" in
    setup) setup ;;
    demo) shift; setup; snakemake --cores 2 --configfile presets/demo.yaml "$@" ;;
    fast) shift; setup; lane "not ($long)" "$@" ;;
    slow) shift; setup; lane "$long" "$@" ;;
    test)
        # Every test once, the fast lane first: a broken unit shows before the long tests run.
        shift; setup; rc=0
        lane "not ($long)" "$@" || rc=$?
        lane "$long" "$@" || rc=$?
        exit "$rc"
        ;;
    claims)
        shift; setup
        python -m bractivate.data.sample resources/sample/nuclei --tile 64
        snakemake --cores 2 --configfile presets/claims.yaml "$@"
        ;;
    *) echo "usage: ./run.sh setup | demo [snakemake args] | fast | slow | test [pytest args] | claims [snakemake args]" >&2; exit 2 ;;
esac
