"""The Snakemake workflow: static checks, dry runs of the paper's config, and one end-to-end
run of the tiny preset whose outputs the later tests read."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from helpers import BIN, ROOT, copy_workflow, snakemake


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run."""
    table = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


@pytest.mark.slow
def test_lint_is_clean():
    done = snakemake("--lint", "--configfile", "presets/tiny.yaml")
    assert "Congratulations, your workflow is in a good condition!" in done.stdout + done.stderr


def test_snakefmt_is_clean():
    done = subprocess.run([str(BIN / "snakefmt"), "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_a_preset_replaces_the_data_sets():
    # The Snakefile reads Snakemake's private ``workflow.config_settings.overwrite_config``.
    from snakemake.settings.types import ConfigSettings

    settings = ConfigSettings(configfiles=[ROOT / "presets" / "tiny.yaml"])
    assert set(getattr(settings, "overwrite_config", {}).get("datasets", {})) == {"lungs"}, \
        "Snakemake's ConfigSettings.overwrite_config changed: see the Snakefile"
    counts = job_counts(snakemake("-n", "--quiet", "rules", "--configfile", "presets/tiny.yaml").stdout)
    assert counts["preprocess"] == 1  # lungs only: the paper's em and nuclei downloads are gone


def test_ruff_is_clean():
    done = subprocess.run([str(BIN / "ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_pyproject_pins_are_the_lock_versions():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines()
                 + (ROOT / "requirements-torch.lock").read_text().splitlines())
    pins = _pins(d for d in declared if "==" in d)
    assert pins and all(lock.get(name) == version for name, version in pins.items()), (pins, lock)
    # keract cannot read a Keras 3 model (docs/method.md, "Ablation"): nothing may pull it back in.
    assert "keract" not in lock and not any("keract" in d for d in declared)


def _pins(packages) -> dict[str, str]:
    pins = {}
    for line in packages:
        if "==" in line:
            name, version = line.split("#")[0].strip().split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def test_conda_envs_pin_the_lock_versions():
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines()
                 + (ROOT / "requirements-torch.lock").read_text().splitlines())
    # the conda train env takes the CUDA-capable build of the lock's CPU build of TensorFlow
    lock["tensorflow"] = lock["tensorflow-cpu"]
    for env_file in sorted((ROOT / "envs").glob("*.yaml")):
        env = yaml.safe_load(env_file.read_text())
        assert "python=3.11" in env["dependencies"], env_file.name
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        pins = _pins(pip)
        assert len(pins) == len(pip), f"{env_file.name}: every pip entry must be pinned with =="
        for name, version in pins.items():
            assert lock.get(name) == version, f"{env_file.name}: {name}=={version}, lock has {lock.get(name)}"
    rules = "\n".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    for env_name in re.findall(r'conda:\s*"\.\./envs/(\w+)\.yaml"', rules):
        assert (ROOT / "envs" / f"{env_name}.yaml").is_file()


def test_every_backend_of_the_schema_is_installed_from_the_locks():
    import importlib.util

    lock = _pins((ROOT / "requirements.lock").read_text().splitlines()
                 + (ROOT / "requirements-torch.lock").read_text().splitlines())
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
    backends = schema["properties"]["keras_backend"]["enum"]
    package = {"torch": "torch", "tensorflow": "tensorflow-cpu", "jax": "jax"}
    assert "torch" in backends and "tensorflow" in backends
    for backend in backends:
        assert package.get(backend) in lock, f"keras_backend {backend!r} is in the schema but not in the locks"
        assert importlib.util.find_spec(backend) is not None, f"keras_backend {backend!r} is not installed"
        assert f"`{backend}`" in (ROOT / "README.md").read_text() or backend == "torch"


def test_every_rule_logs_and_training_rules_benchmark():
    text = "\n".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    # Top-level rules and the rules a loop defines (indented ``rule:`` with ``name:``), each
    # checked for its own keywords at its own indentation.
    blocks = re.split(r"^(?=[ ]*rule\b)", text, flags=re.M)[1:]
    assert len(blocks) >= 8 and sum(block.startswith("rule ") for block in blocks) >= 7
    for block in blocks:
        indent = " " * (len(block) - len(block.lstrip(" "))) + "    "
        name = "".join(filter(None, re.match(r"\s*rule (\w+)|\s*rule:\s*name:\s*(\S+)", block).groups()))
        assert f"\n{indent}log:" in block, f"rule {name} has no log:"
        assert f"\n{indent}conda:" in block, f"rule {name} has no conda env"
        if "gpu=1" in block:
            assert f"\n{indent}benchmark:" in block, f"GPU rule {name} has no benchmark:"


@pytest.mark.slow
def test_paper_config_dry_run_job_counts():
    done = snakemake("-n", "--quiet", "rules")
    counts = job_counts(done.stdout)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    n_sets, n_exp, trials = len(config["datasets"]), len(config["experiments"]), config["trials"]
    assert (n_sets, trials) == (3, 3) and {"main", "deep5", "deep7", "bcl", "random"} == set(config["experiments"])
    assert counts["download"] == counts["preprocess"] == 3
    assert counts["search"] == counts["train_best"] == n_sets * n_exp * trials == 45
    assert counts["ablation"] == n_sets * trials
    assert counts["baseline"] == n_sets * 6 * trials


@pytest.mark.slow
def test_bad_config_stops_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("search:\n  epoch: 3\n")
    done = snakemake("-n", "--configfile", "presets/tiny.yaml", str(bad), check=False)
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "Additional properties are not allowed ('epoch' was unexpected)" in said
    assert "Job stats" not in said
    bad.write_text("trials: three\n")
    done = snakemake("-n", "--configfile", "presets/tiny.yaml", str(bad), check=False)
    assert done.returncode != 0 and "'three' is not of type 'integer'" in done.stdout + done.stderr


@pytest.mark.e2e
def test_tiny_preset_runs_end_to_end(tiny_run):
    work = tiny_run
    config = yaml.safe_load((work / "presets/tiny.yaml").read_text())
    experiments = yaml.safe_load((work / "config.yaml").read_text())["experiments"]
    for dataset in config["datasets"]:
        with h5py.File(work / f"resources/{dataset}.h5") as h5:
            assert h5["images"].shape[1:] == (32, 32, 1)
        for experiment in experiments:
            folder = work / f"results/search/{dataset}/{experiment}/trial1"
            history = pd.read_csv(folder / "history.tsv", sep="\t")
            assert len(history) == config["search"]["evaluations"]
            best = json.loads((folder / "best_genome.json").read_text())
            assert best["result"]["genome_hash"] in set(history["genome_hash"])
            metrics = json.loads((work / f"results/train/{dataset}/{experiment}/trial1/metrics.json").read_text())
            assert 0 <= metrics["test_dice"] <= 1 and metrics["params"] > 0
            assert (work / f"results/train/{dataset}/{experiment}/trial1/model.keras").stat().st_size > 0
        ablation = json.loads((work / f"results/ablation/{dataset}/trial1/metrics.json").read_text())
        for key in ("intact_dice", "zeroed_dice", "retrained_dice"):
            assert 0 <= ablation[key] <= 1
        assert "control_block" in ablation and "control_zeroed_dice" in ablation
        for model in yaml.safe_load((ROOT / "config.yaml").read_text())["baselines"]["models"]:
            metrics = json.loads((work / f"results/baselines/{dataset}/{model}/trial1/metrics.json").read_text())
            assert 0 <= metrics["test_dice"] <= 1 and metrics["params"] > 0
    for log in ("logs/search/lungs/main/trial1.log", "logs/preprocess/lungs.log"):
        assert (work / log).stat().st_size > 0
    assert "KERAS_BACKEND='torch'" in (work / "logs/search/lungs/main/trial1.log").read_text()
    assert "KERAS_BACKEND='torch'" in (work / "logs/baseline/lungs/nasunet/trial1.log").read_text()
    assert "KERAS_BACKEND='tensorflow'" in (work / "logs/baseline/lungs/unet/trial1.log").read_text()
    for name in ("table2_dice", "table3_search_hours", "table_ablation", "table_activation",
                 "table_dice_time", "paired_main_random"):
        for ext in ("tsv", "md", "tex"):
            assert (work / f"results/tables/{name}.{ext}").stat().st_size > 0
    table2 = pd.read_csv(work / "results/tables/table2_dice.tsv", sep="\t")
    assert len(table2) == 2 + 6  # Bractivate, the random control and six baselines, one data set
    assert {"collapsed", "same_genome"} <= set(table2.columns)
    # The claims rule at tiny size: every claim the run can test, one trial, so none decided.
    claims = pd.read_csv(work / "results/tables/claims.tsv", sep="\t")
    assert list(claims.columns) == ["claim", "dataset", "paper", "measured", "n", "test", "p_value", "verdict"]
    assert {"C1a", "C1b", "C3", "C4", "C5", "C6"} <= set(claims["claim"])
    assert set(claims["n"]) <= {0, 1} and set(claims["verdict"]) == {"inconclusive"}  # C2: 0 without a control
    for ext in ("md", "tex", "html"):
        assert (work / f"results/tables/claims.{ext}").stat().st_size > 0
    for name in ("fig4", "fig5", "fig6", "fig7", "fig9", "search_traces"):
        with Image.open(work / f"results/figures/{name}.png") as png:
            assert min(png.size) >= 300
        assert (work / f"results/figures/{name}.pdf").read_bytes()[:5] == b"%PDF-"
    assert not list(work.glob("results/**/.*.tmp*")), "temporary files left behind"


@pytest.mark.e2e
def test_changing_a_stage_reruns_only_what_depends_on_it(tiny_run, tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("figures: {dpi: 99}\n")
    counts = job_counts(snakemake("-n", "--quiet", "rules", "--configfile", "presets/tiny.yaml", str(overlay),
                                  cwd=tiny_run).stdout)
    assert counts and all(rule.startswith(("fig", "search_traces", "all")) for rule in counts), counts
    overlay.write_text("search: {epochs: 3}\n")
    counts = job_counts(snakemake("-n", "--quiet", "rules", "--configfile", "presets/tiny.yaml", str(overlay),
                                  cwd=tiny_run).stdout)
    assert counts["search"] == counts["train_best"] == 5 and counts["ablation"] == 1
    assert "preprocess" not in counts and "download" not in counts and "baseline" not in counts
    overlay.write_text("keras_backend: tensorflow\n")  # all it trained, NAS-UNet the only baseline
    counts = job_counts(snakemake("-n", "--quiet", "rules", "--configfile", "presets/tiny.yaml", str(overlay),
                                  cwd=tiny_run).stdout)
    assert counts["search"] == counts["train_best"] == 5 and counts["ablation"] == counts["baseline"] == 1
    assert "preprocess" not in counts and "download" not in counts


def _check_complete(path: Path) -> None:
    """Raise if an output file is half-written."""
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".tsv":
        pd.read_csv(path, sep="\t")
    elif path.suffix == ".h5":
        with h5py.File(path, "r") as h5:
            list(h5)
    elif path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None, path


FIRST_EPOCH = re.compile(r"\bepoch 1/\d+")  # bractivate.progress's line after a training's first epoch


def _logged(logs, pattern: re.Pattern) -> bool:
    """Whether any of the log files ``logs`` holds a line that matches ``pattern``."""
    return any(pattern.search(log.read_text(errors="replace")) for log in logs)


@pytest.mark.e2e
def test_killed_dag_completes_with_rerun_incomplete(tmp_path):
    """SIGKILL Snakemake and its jobs while training jobs run; no output is half-written, and
    --unlock then --rerun-incomplete finish the DAG without redoing finished jobs."""
    work = copy_workflow(tmp_path)
    args = ["--cores", "2", "--configfile", "presets/tiny.yaml", "--",
            *(f"results/train/lungs/{e}/trial1/metrics.json" for e in ("main", "random", "bcl"))]
    proc = subprocess.Popen([str(BIN / "snakemake"), *args], cwd=work, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Killed once a training job has logged its first epoch: past its imports and training.
        deadline = time.monotonic() + 400
        while not _logged(work.glob("logs/train_best/lungs/*/trial1.log"), FIRST_EPOCH):
            assert proc.poll() is None, "the DAG finished before it could be killed"
            assert time.monotonic() < deadline, "no training job logged its first epoch within 400 s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    outputs = [p for p in (work / "results").rglob("*") if p.is_file() and not p.name.startswith(".")]
    for path in outputs + [work / "resources/lungs.h5"]:
        _check_complete(path)
    done = {e for e in ("main", "random", "bcl") if (work / f"results/train/lungs/{e}/trial1/metrics.json").exists()}
    assert len(done) < 3, "killed too late: every training job had finished"
    data_mtime = (work / "resources/lungs.h5").stat().st_mtime_ns

    snakemake("--unlock", *args, cwd=work)
    snakemake("--rerun-incomplete", *args, cwd=work, timeout=600)
    for experiment in ("main", "random", "bcl"):
        metrics = json.loads((work / f"results/train/lungs/{experiment}/trial1/metrics.json").read_text())
        assert 0 <= metrics["test_dice"] <= 1
        _check_complete(work / f"results/train/lungs/{experiment}/trial1/model.keras")
    assert (work / "resources/lungs.h5").stat().st_mtime_ns == data_mtime, "finished work was redone"
    assert "Nothing to be done" in snakemake("-n", *args, cwd=work).stdout


@pytest.mark.e2e
def test_report_collects_the_results(tiny_run):
    snakemake("--configfile", "presets/tiny.yaml", "--report", "results/report.html", cwd=tiny_run, timeout=300)
    assert (tiny_run / "results/report.html").stat().st_size > 10_000


@pytest.mark.e2e
def test_predict_writes_masks_at_native_size(tiny_run, tmp_path):
    rng = np.random.default_rng(0)
    sizes = {"a": (37, 53), "b": (64, 31), "c": (101, 101)}
    (tmp_path / "in").mkdir()
    for stem, size in sizes.items():
        Image.fromarray((rng.random(size) * 255).astype(np.uint8)).save(tmp_path / "in" / f"{stem}.png")
    Image.fromarray((rng.random((20, 30, 3)) * 255).astype(np.uint8)).save(tmp_path / "in" / "d.jpg")
    sizes["d"] = (20, 30)
    model = tiny_run / "results/train/lungs/main/trial1/model.keras"
    done = subprocess.run([str(BIN / "bractivate"), "predict", str(model), str(tmp_path / "in"), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for stem, size in sizes.items():
        mask = np.asarray(Image.open(tmp_path / "out" / f"{stem}.png"))
        assert mask.shape == size and set(np.unique(mask)) <= {0, 255}
    assert len(list((tmp_path / "out").iterdir())) == 4


@pytest.mark.slow
def test_slurm_profile_dry_run_gives_every_gpu_rule_one_gpu():
    out = snakemake("--profile", "profiles/slurm", "-n", timeout=300).stdout
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, re.M)
    seen = set()
    for rule, resources in jobs:
        seen.add(rule)
        if rule in ("search", "train_best", "ablation", "baseline"):
            assert "gpu=1" in resources.split(", ") and "slurm_partition=gpu" in resources, (rule, resources)
        else:
            assert "gpu=" not in resources, (rule, resources)
    assert {"search", "train_best", "ablation", "baseline", "preprocess", "table2_dice"} <= seen


@pytest.mark.slow
def test_config_files_are_read_with_the_project_reader(tmp_path):
    # The Snakefile reads Snakemake's private ``workflow.configfiles`` (config.yaml and every --configfile).
    (tmp_path / "p.yaml").write_text("train:\n  epochs: 3\ntrain:\n  epochs: 4\n")
    done = snakemake("-n", "--configfile", "presets/tiny.yaml", str(tmp_path / "p.yaml"), check=False)
    assert done.returncode != 0
    assert "p.yaml: key 'train' given twice (lines 1 and 3)" in done.stdout + done.stderr, \
        "Snakemake's workflow.configfiles changed: see the Snakefile"
