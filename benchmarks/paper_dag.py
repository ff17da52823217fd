"""Predict the wall time of a config's whole DAG from per-job costs and the scheduler.

    python benchmarks/paper_dag.py [--configfile config.yaml] [--sharing gpu-out/sharing.json]

The jobs and their dependencies come from ``snakemake --dry-run --forceall`` (167 jobs for
config.yaml); each job's cost comes from its rule, its data set's size and a machine profile
(MACHINES, from the measurements in docs/benchmarks.md); the schedule is simulated: ready jobs
start, longest first, while cores and GPU-job slots (``--resources gpu=N``, ``gpus.jobs_per_gpu``)
allow, and jobs that share a GPU each run at ``S(k) / k`` of their speed alone, where ``S(k)``
is the measured aggregate throughput of ``k`` jobs on one GPU (``--sharing``, written by
benchmarks/gpu_run.sh; without it sharing gains nothing). Prints one JSON line per scenario;
its ``simulated_machine`` is the MACHINES profile, not the machine the script runs on.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

sys.path.insert(0, str(Path(__file__).resolve().parent))  # common.py, also where the tests load this file
from common import workflow_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Images per data set of config.yaml (docs/data.md): Montgomery 138, Lucchi EM 2 x 165 slices,
# DSB2018 stage1_train 670.
DATASET_IMAGES = {"lungs": 138, "em": 330, "nuclei": 670}
# Trainable parameters of the baselines (docs/baselines.md).
BASELINE_PARAMS = {"unet": 7.6e6, "unetpp": 9.0e6, "wideunet": 9.0e6, "attunet": 3.2e7, "r2unet": 9.6e7,
                   "nasunet": 2.2e5}
GPU_RULES = ("search", "train_best", "ablation", "baseline")

# Seconds, at 128x128, for one machine. Measured (docs/benchmarks.md) unless marked assumed.
MACHINES = {
    "cpu": {  # the 2-core development VM, PyTorch, one thread per job
        "cores": 2, "gpus": 0,
        # 40 evaluations of the paper's epochs on 20 demo images at 64x64: 184.3 s, i.e.
        # 4.6 s per evaluation; x4 pixels at 128x128, linear in images
        "search_eval_per_image": 4.6 / 20 * 4,
        # plain UNet (depth 4, 16 filters), 97 training images at 128x128: 5.97 s per epoch
        "epoch_per_train_image": 5.97 / 97,
        "job_start": 7.0,  # starting Python and importing Keras (demo run)
        "preprocess_per_image": 1 / 13.6,
    },
    "h200": {  # one NVIDIA H200, PyTorch, 16 cores
        "cores": 16, "gpus": 1,
        "search_eval_per_image": 10.66 / 138,  # 10.66 s per evaluation, 138 images
        "epoch_per_train_image": 0.356 / 97,  # plain UNet epoch, 97 training images
        "job_start": 7.0,  # assumed as on the CPU
        "preprocess_per_image": 1 / 13.6,  # assumed as on the CPU (it is CPU work)
    },
}
ASSUMED = {"download": 60.0, "cpu_job": 10.0}  # assumed: network-bound downloads; report jobs


def search_and_training_budget(config: Mapping) -> dict:
    """A config's evaluations per search, epochs per full training (and ablation and baseline)
    and the share of a data set's images that trains."""
    return {"evaluations": int(config["search"]["evaluations"]), "epochs": int(config["train"]["epochs"]),
            "train_share": float(config["split"]["train"])}


BUDGET = search_and_training_budget(workflow_config())  # config.yaml's


@dataclass
class Job:
    name: str
    rule: str
    wildcards: dict
    inputs: list
    outputs: list
    gpu: int = 0
    threads: int = 1
    cost: float = 0.0
    deps: set = field(default_factory=set)


def dry_run_jobs(configfile: Path) -> list[Job]:
    """The jobs of ``snakemake --dry-run --forceall`` and their dependencies (by file)."""
    text = subprocess.run([sys.executable, "-m", "snakemake", "--dry-run", "--forceall", "--configfile",
                           str(configfile), "--cores", "1"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout
    return parse_dry_run(text)


def parse_dry_run(text: str) -> list[Job]:
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        head = re.match(r"(?:local)?rule (\w+):", block.strip())
        if not head:
            continue
        fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, flags=re.M))
        split = lambda key: [s.strip() for s in fields.get(key, "").split(",") if s.strip()]  # noqa: E731
        wildcards = dict(item.split("=", 1) for item in split("wildcards"))
        resources = dict(item.split("=", 1) for item in split("resources"))
        jobs.append(Job(f"{head.group(1)}#{fields.get('jobid', len(jobs))}", head.group(1), wildcards,
                        split("input"), split("output"), gpu=int(resources.get("gpu", 0)),
                        threads=int(fields.get("threads", 1))))
    producer = {out: job.name for job in jobs for out in job.outputs}
    for job in jobs:
        job.deps = {producer[f] for f in job.inputs if f in producer and producer[f] != job.name}
    return jobs


def job_cost(job: Job, machine: dict, budget: Mapping = BUDGET) -> float:
    """Seconds the job takes alone on ``machine`` under ``budget`` (:func:`search_and_training_budget`)."""
    n = DATASET_IMAGES.get(job.wildcards.get("dataset", ""), 0)
    if job.rule == "download":
        return ASSUMED["download"]
    if job.rule == "preprocess":
        return machine["job_start"] + n * machine["preprocess_per_image"]
    epoch = machine["epoch_per_train_image"] * n * budget["train_share"]
    if job.rule == "search":
        return machine["job_start"] + budget["evaluations"] * machine["search_eval_per_image"] * n
    if job.rule in ("train_best", "ablation"):
        return machine["job_start"] + budget["epochs"] * epoch
    if job.rule == "baseline":
        # assumed: up to 1e7 parameters an epoch costs what the plain UNet's does (a small model
        # leaves the GPU idle); beyond, it grows with the parameters
        size = BASELINE_PARAMS.get(job.wildcards.get("model"), 1e7) / 1e7
        return machine["job_start"] + budget["epochs"] * epoch * max(1.0, size)
    return ASSUMED["cpu_job"] if job.rule != "all" else 0.0


def simulate(jobs: list[Job], cores: int, gpu_jobs: int, gpus: int = 1, jobs_per_gpu: int = 1,
             sharing: dict[int, float] | None = None) -> float:
    """Makespan in seconds. A GPU job occupies one of ``jobs_per_gpu`` slots of one of ``gpus``
    GPUs (at most ``gpu_jobs`` at once); with ``k`` jobs on a GPU each progresses at
    ``sharing[k] / k`` of its speed alone (``sharing`` missing: 1, no gain). Every job holds
    its threads of ``cores``."""
    sharing = sharing or {}
    speedup = lambda k: min(sharing.get(k, 1.0), float(k)) / k if k else 1.0  # noqa: E731
    by_name = {j.name: j for j in jobs}
    waiting = {j.name: set(j.deps) for j in jobs}
    children: dict[str, list[str]] = {j.name: [] for j in jobs}
    for j in jobs:
        for d in j.deps:
            children[d].append(j.name)
    ready = [n for n, d in waiting.items() if not d]
    running: dict[str, list] = {}  # name -> [remaining work, gpu or None]
    on_gpu = [0] * max(gpus, 1)
    now, free_cores, free_gpu_jobs = 0.0, cores, gpu_jobs
    while ready or running:
        ready.sort(key=lambda n: -by_name[n].cost)
        for name in list(ready):
            job = by_name[name]
            threads = min(job.threads, cores)
            if threads > free_cores:
                continue
            if job.gpu:
                gpu = min(range(len(on_gpu)), key=lambda g: on_gpu[g])
                if free_gpu_jobs < 1 or on_gpu[gpu] >= jobs_per_gpu or gpus < 1:
                    continue
                on_gpu[gpu] += 1
                free_gpu_jobs -= 1
            else:
                gpu = None
            free_cores -= threads
            running[name] = [job.cost, gpu]
            ready.remove(name)
        if not running:
            raise RuntimeError(f"jobs {ready[:3]} can never start with {cores} cores and {gpu_jobs} GPU job(s)")
        rates = {n: (speedup(on_gpu[g]) if g is not None else 1.0) for n, (_, g) in running.items()}
        step = min(rem / rates[n] for n, (rem, _) in running.items())
        now += step
        done = []
        for name, entry in running.items():
            entry[0] -= step * rates[name]
            if entry[0] <= 1e-9:
                done.append(name)
        for name in done:
            _, gpu = running.pop(name)
            free_cores += min(by_name[name].threads, cores)
            if gpu is not None:
                on_gpu[gpu] -= 1
                free_gpu_jobs += 1
            for child in children[name]:
                waiting[child].discard(name)
                if not waiting[child]:
                    ready.append(child)
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configfile", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--sharing", type=Path, help="JSON {k: aggregate throughput of k jobs on one GPU}")
    args = parser.parse_args()
    jobs = dry_run_jobs(args.configfile)
    budget = search_and_training_budget(workflow_config(args.configfile))
    sharing = {int(k): float(v) for k, v in json.loads(args.sharing.read_text()).items()} if args.sharing else {}
    counts = {}
    for job in jobs:
        counts[job.rule] = counts.get(job.rule, 0) + 1
    print(json.dumps({"jobs": len(jobs), "gpu_jobs": sum(j.gpu for j in jobs), "by_rule": counts}))
    # (machine, --resources gpu, jobs per GPU, S(k)). On the CPU "GPU jobs" run on the cores;
    # two of them side by side run 1.51x as fast as one (benchmarks/parallel_scaling.py).
    scenarios = [("cpu", 1, 1, {}, "none"), ("cpu", 2, 2, {2: 1.51}, "measured"), ("h200", 1, 1, {}, "none")]
    scenarios += [("h200", k, k, sharing, "measured") for k in (4, 8, 16) if k in sharing]
    # what no sharing measurement can beat: 16 jobs at full speed each (S(k) = k)
    scenarios.append(("h200", 16, 16, {k: float(k) for k in range(1, 17)}, "ideal bound, not measured"))
    for name, gpu_jobs, per_gpu, table, label in scenarios:
        machine = MACHINES[name]
        for job in jobs:
            job.cost = job_cost(job, machine, budget)
        seconds = simulate(jobs, machine["cores"], gpu_jobs, 1, per_gpu, table)
        total = {r: round(sum(j.cost for j in jobs if j.rule == r) / 3600, 2) for r in GPU_RULES}
        print(json.dumps({"simulated_machine": name, "resources_gpu": gpu_jobs, "jobs_per_gpu": per_gpu,
                          "sharing": label,
                          "job_hours_by_rule": total, "predicted_hours": round(seconds / 3600, 2)}))


if __name__ == "__main__":
    main()
