"""The scheduling simulator of benchmarks/paper_dag.py on small DAGs with known makespans."""

import importlib.util
import sys
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("paper_dag", Path(__file__).resolve().parents[1] / "benchmarks" / "paper_dag.py")
paper_dag = importlib.util.module_from_spec(spec)
sys.modules["paper_dag"] = paper_dag  # dataclasses look their module up there
spec.loader.exec_module(paper_dag)

DRY_RUN = """
rule preprocess:
    input: raw.json
    output: resources/a.h5
    jobid: 1
    wildcards: dataset=lungs

rule search:
    input: resources/a.h5
    output: s1.json
    jobid: 2
    wildcards: dataset=lungs, experiment=main, trial=1
    resources: tmpdir=/tmp, gpu=1

rule search:
    input: resources/a.h5
    output: s2.json
    jobid: 3
    wildcards: dataset=lungs, experiment=main, trial=2
    resources: tmpdir=/tmp, gpu=1

localrule all:
    input: s1.json, s2.json
    jobid: 0
"""


def jobs(costs):
    parsed = paper_dag.parse_dry_run(DRY_RUN)
    for job in parsed:
        job.cost = costs[job.rule]
    return parsed


def test_dry_run_is_parsed_into_jobs_and_file_dependencies():
    parsed = {j.name: j for j in paper_dag.parse_dry_run(DRY_RUN)}
    assert set(parsed) == {"preprocess#1", "search#2", "search#3", "all#0"}
    assert parsed["search#2"].gpu == 1 and parsed["preprocess#1"].gpu == 0
    assert parsed["search#3"].deps == {"preprocess#1"}
    assert parsed["all#0"].deps == {"search#2", "search#3"}


@pytest.mark.parametrize("gpu_jobs, per_gpu, sharing, expected", [
    (1, 1, {}, 10 + 100 + 100 + 1),  # one GPU job at a time
    (2, 2, {}, 10 + 200 + 1),  # two share the GPU but gain nothing
    (2, 2, {2: 2.0}, 10 + 100 + 1),  # two share it at full speed each
    (2, 2, {2: 1.5}, 10 + 200 / 1.5 + 1),  # measured aggregate 1.5x
    (2, 1, {}, 10 + 200 + 1),  # two GPU jobs allowed, but one slot on the one GPU
])
def test_makespan_follows_slots_and_sharing(gpu_jobs, per_gpu, sharing, expected):
    seconds = paper_dag.simulate(jobs({"preprocess": 10, "search": 100, "all": 1}), cores=4,
                                 gpu_jobs=gpu_jobs, gpus=1, jobs_per_gpu=per_gpu, sharing=sharing)
    assert seconds == pytest.approx(expected)


def test_cores_limit_jobs_too():
    seconds = paper_dag.simulate(jobs({"preprocess": 10, "search": 100, "all": 1}), cores=1,
                                 gpu_jobs=2, gpus=1, jobs_per_gpu=2, sharing={2: 2.0})
    assert seconds == pytest.approx(211)


def test_costs_grow_with_the_data_set():
    machine = paper_dag.MACHINES["h200"]
    small, large = (paper_dag.Job("s", "search", {"dataset": d}, [], []) for d in ("lungs", "nuclei"))
    assert paper_dag.job_cost(large, machine) - machine["job_start"] == pytest.approx(
        (paper_dag.job_cost(small, machine) - machine["job_start"]) * 670 / 138)
