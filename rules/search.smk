# Stage 3: one search per (data set, experiment, trial) (docs/method.md#search).


rule search:
    input:
        data=rules.preprocess.output.h5,
    output:
        best="results/search/{dataset}/{experiment}/trial{trial}/best_genome.json",
        history="results/search/{dataset}/{experiment}/trial{trial}/history.tsv",
    log:
        "logs/search/{dataset}/{experiment}/trial{trial}.log",
    benchmark:
        "results/benchmarks/search/{dataset}/{experiment}/trial{trial}.tsv"
    conda:
        "../envs/train.yaml"
    threads: GPU_RULE_THREADS
    resources:
        gpu=1,
    params:
        settings=search_settings,
        # The resumable state is not an output: Snakemake deletes the outputs of a failed job,
        # and a killed search must pick up where it stopped.
        state=lambda wc: f"results/state/search/{wc.dataset}/{wc.experiment}/trial{wc.trial}.json",
        backend=config["keras_backend"],
    script:
        "../scripts/search.py"
