#!/usr/bin/env bash
# Entry points of the project; each one first does every set-up step it needs.
#   ./run.sh setup          create .venv and install the locked dependencies and the package
#   ./run.sh demo [ARGS]    run the whole workflow on built-in synthetic data (presets/demo.yaml)
#   ./run.sh test [ARGS]    run the test suite with pytest (ARGS go to pytest)
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

case "${1:-}" in
    setup) setup ;;
    demo) shift; setup; snakemake --cores 2 --configfile presets/demo.yaml "$@" ;;
    test) shift; setup; python -m pytest "$@" ;;
    claims)
        shift; setup
        python -m bractivate.data.sample resources/sample/nuclei --tile 64
        snakemake --cores 2 --configfile presets/claims.yaml "$@"
        ;;
    *) echo "usage: ./run.sh setup | demo [snakemake args] | test [pytest args] | claims [snakemake args]" >&2; exit 2 ;;
esac
