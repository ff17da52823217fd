# Stage 6: the baseline UNets under the same split, protocol and trials (docs/method.md#baselines).


rule baseline:
    input:
        data=rules.preprocess.output.h5,
    output:
        metrics="results/baselines/{dataset}/{model}/trial{trial}/metrics.json",
        history="results/baselines/{dataset}/{model}/trial{trial}/history.tsv",
    log:
        "logs/baseline/{dataset}/{model}/trial{trial}.log",
    benchmark:
        "results/benchmarks/baseline/{dataset}/{model}/trial{trial}.tsv"
    conda:
        "../envs/train.yaml"
    threads: GPU_RULE_THREADS
    resources:
        gpu=1,
    params:
        train=config["train"],
        width_scale=config["baselines"]["width_scale"],
        seed=lambda wc: config["seed"] + int(wc.trial),
        backend=baseline_backend,
    script:
        "../scripts/baseline.py"
