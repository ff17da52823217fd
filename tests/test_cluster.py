"""Run Snakemake through profiles/slurm on the single-node SLURM cluster.

Opt-in: these tests start real daemons (tests/cluster/slurm.sh start needs
root, or password-less sudo, and apt). CI sets BRACTIVATE_CLUSTER_TESTS=1:

    BRACTIVATE_CLUSTER_TESTS=1 pytest -m cluster tests/test_cluster.py

The cluster is left running afterwards (a second run starts in ~1 s); stop it
with `tests/cluster/slurm.sh stop`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import copy_workflow

REPO = Path(__file__).resolve().parent.parent
SLURM_SH = REPO / "tests" / "cluster" / "slurm.sh"
PROFILE = REPO / "profiles" / "slurm"
CI_PROFILE = REPO / "tests" / "cluster" / "profile"
# The venv's snakemake, next to the interpreter running pytest.
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        os.environ.get("BRACTIVATE_CLUSTER_TESTS") != "1",
        reason="SLURM cluster tests are opt-in: set BRACTIVATE_CLUSTER_TESTS=1 "
        "(starts slurmctld/slurmd/slurmdbd/MariaDB via tests/cluster/slurm.sh; needs root + apt)",
    ),
]


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    """Start (or re-use) the single-node cluster; fail loudly if it does not come up."""
    cmd = ["bash", str(SLURM_SH), "start"]
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            pytest.fail("tests/cluster/slurm.sh needs root (or sudo) to start the cluster")
        cmd = ["sudo", "-n", "--preserve-env=BRACTIVATE_SLURM_USERS", *cmd]
    proc = subprocess.run(
        ["timeout", "-k", "10", "900", *cmd],
        capture_output=True, text=True, check=False,
    )
    print(proc.stdout)
    if proc.returncode != 0:
        pytest.fail(f"slurm.sh start failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def job_env() -> dict[str, str]:
    """Environment for the Snakemake head process.

    sbatch is called with --export=ALL, so the jobs inherit it: the venv's bin
    directory goes first on PATH so that `python`, `snakemake` and the
    workflow's tools inside the jobs are the venv's. SLURM_* variables (set
    when pytest itself runs inside an allocation) are dropped.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env["PATH"] = f"{SNAKEMAKE.parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def run_snakemake(workdir: Path, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """`snakemake --profile profiles/slurm --profile tests/cluster/profile ARGS`
    in WORKDIR, under coreutils `timeout` (SIGTERM lets Snakemake scancel its jobs)."""
    cmd = [
        "timeout", "-k", "30", str(timeout), str(SNAKEMAKE),
        "--profile", str(PROFILE), "--profile", str(CI_PROFILE),
        *args,
    ]
    proc = subprocess.run(
        cmd, cwd=workdir, env=job_env(), capture_output=True, text=True,
        check=False, timeout=timeout + 60,
    )
    # Shown by pytest when the test fails.
    print("$", " ".join(cmd), f"\n[rc={proc.returncode}]\n", proc.stdout[-20000:], proc.stderr[-20000:])
    return proc


def run_workflow_on_slurm(
    workdir: Path, configfile: str, *args: str, timeout: int | None = None
) -> subprocess.CompletedProcess:
    """Run the real Bractivate workflow in WORKDIR (holding a copy of the
    Snakefile & co.) with CONFIGFILE through the SLURM profile."""
    if timeout is None:
        timeout = int(os.environ.get("BRACTIVATE_CLUSTER_E2E_TIMEOUT", "1800"))
    return run_snakemake(workdir, "--configfile", configfile, *args, timeout=timeout)


def slurm_run_id(proc: subprocess.CompletedProcess) -> str:
    """The plugin's run ID; it is every SLURM job's name (prefix from the profile)."""
    match = re.search(r"SLURM run ID: (\S+)", proc.stdout + proc.stderr)
    assert match, "no 'SLURM run ID' in the Snakemake output - was the slurm executor used?"
    return match.group(1)


def sacct_jobs(run_id: str) -> list[dict[str, str]]:
    """sacct rows (allocations only) for the jobs named RUN_ID, oldest first."""
    fields = ["JobID", "JobName", "Comment", "Partition", "State", "ReqMem", "AllocTRES"]
    out = subprocess.run(
        ["timeout", "60", "sacct", "-a", "-X", "-n", "-P", "-S", "now-1days",
         "--name", run_id, "-o", ",".join(fields)],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]
    return sorted(rows, key=lambda r: int(r["JobID"].split("_")[0]))


TINY_SNAKEFILE = """\
rule all:
    input: "out/search.txt", "out/gpu.txt"

rule prep:
    output: "out/prep.txt"
    shell: "hostname > {output}"

# Named like a workflow GPU rule: profiles/slurm's set-resources gives it
# gpu=1, cpus_per_gpu and the "gpu" partition.
rule search:
    input: "out/prep.txt"
    output: "out/search.txt"
    shell: "echo CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-unset}} > {output}; command -v python >> {output}"

# A GPU request made in the Snakefile itself.
rule gpu_direct:
    input: "out/prep.txt"
    output: "out/gpu.txt"
    resources: gpu=1
    run:
        import sys
        with open(output[0], "w") as fh:
            fh.write(sys.executable + "\\n")
"""


def test_tiny_workflow_runs_and_is_accounted(slurm_cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(TINY_SNAKEFILE)
    proc = run_snakemake(tmp_path, timeout=300)
    assert proc.returncode == 0, "tiny workflow failed on SLURM (see stdout above)"

    # Jobs ran with the venv's python (PATH and sys.executable propagate).
    search_out = (tmp_path / "out" / "search.txt").read_text().splitlines()
    # SLURM hands out one of the two fake GPUs (gres.conf) and says which.
    assert re.fullmatch(r"CUDA_VISIBLE_DEVICES=[01]", search_out[0]), search_out
    assert Path(search_out[1]).parent == SNAKEMAKE.parent
    assert Path((tmp_path / "out" / "gpu.txt").read_text().strip()).parent == SNAKEMAKE.parent

    run_id = slurm_run_id(proc)
    assert run_id.startswith("bractivate_")
    jobs = sacct_jobs(run_id)
    by_rule = {row["Comment"]: row for row in jobs}
    assert set(by_rule) == {"rule_prep", "rule_search", "rule_gpu_direct"}, jobs
    assert all(row["State"] == "COMPLETED" for row in jobs), jobs
    assert all(row["JobName"] == run_id for row in jobs), jobs
    assert by_rule["rule_search"]["Partition"] == "gpu"
    assert by_rule["rule_prep"]["Partition"] == "debug"
    for rule in ("rule_search", "rule_gpu_direct"):
        assert "gres/gpu=1" in by_rule[rule]["AllocTRES"], by_rule[rule]
    assert "gres/gpu" not in by_rule["rule_prep"]["AllocTRES"]
    # cpus_per_gpu=2 from profiles/slurm's set-resources.
    assert "cpu=2" in by_rule["rule_search"]["AllocTRES"], by_rule["rule_search"]


FAILING_SNAKEFILE = """\
rule all:
    input: "out/ok.txt", "out/bad.txt"

rule ok:
    output: "out/ok.txt"
    shell: "touch {output}"

rule bad:
    output: "out/bad.txt"
    shell: "echo failing on purpose >&2; exit 3"
"""


def test_failing_job_fails_the_run(slurm_cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(FAILING_SNAKEFILE)
    # One retry (2 attempts) keeps this short and still shows the retry scaling.
    proc = run_snakemake(tmp_path, "--retries", "1", timeout=240)
    assert proc.returncode != 124, "Snakemake hung on a failed SLURM job (killed by timeout)"
    assert proc.returncode != 0
    assert (tmp_path / "out" / "ok.txt").exists()  # keep-going: the other job still ran

    jobs = sacct_jobs(slurm_run_id(proc))
    bad = [row for row in jobs if row["Comment"] == "rule_bad"]
    assert [row["State"] for row in bad] == ["FAILED", "FAILED"], jobs
    # mem_mb: 1000 * attempt (tests/cluster/profile) -> 1000M, then 2000M.
    assert [row["ReqMem"] for row in bad] == ["1000M", "2000M"], bad


def test_real_workflow_tiny(slurm_cluster, tmp_path):
    if not (REPO / "Snakefile").exists():
        pytest.skip("workflow not present")
    copy_workflow(tmp_path)
    assert (tmp_path / "presets" / "tiny.yaml").exists(), "presets/tiny.yaml missing"

    proc = run_workflow_on_slurm(tmp_path, "presets/tiny.yaml")
    assert proc.returncode != 124, "the tiny workflow did not finish within the timeout"
    assert proc.returncode == 0, "tiny preset failed on SLURM (see stdout above)"
    jobs = sacct_jobs(slurm_run_id(proc))
    assert jobs, "no SLURM jobs were submitted"
    assert all(row["State"] == "COMPLETED" for row in jobs), jobs
    gpu_rules = {"rule_search", "rule_train_best", "rule_ablation", "rule_baseline"}
    rules = {row["Comment"].split("_wildcards")[0] for row in jobs}
    assert gpu_rules | {"rule_table2_dice", "rule_fig7"} <= rules, rules
    for row in jobs:
        gpu = "gres/gpu=1" in row["AllocTRES"]
        assert gpu == (row["Comment"].split("_wildcards")[0] in gpu_rules), row
    for path in ("results/search/lungs/main/trial1/best_genome.json", "results/train/lungs/main/trial1/metrics.json",
                 "results/ablation/lungs/trial1/metrics.json", "results/baselines/lungs/nasunet/trial1/metrics.json",
                 "results/tables/table2_dice.tsv", "results/figures/fig7.png"):
        assert (tmp_path / path).stat().st_size > 0, path
    dry = subprocess.run([str(SNAKEMAKE), "-n", "--configfile", "presets/tiny.yaml"], cwd=tmp_path,
                         capture_output=True, text=True, env=job_env())
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
