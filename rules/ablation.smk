# Stage 5: ablate the dendrites of the most active block of each trained model (docs/method.md#ablation).


rule ablation:
    input:
        data=rules.preprocess.output.h5,
        best=with_wildcards(rules.search.output.best, experiment=ABLATED),
        model=with_wildcards(rules.train_best.output.model, experiment=ABLATED),
    output:
        metrics="results/ablation/{dataset}/trial{trial}/metrics.json",
        maps="results/ablation/{dataset}/trial{trial}/activations.h5",
    log:
        "logs/ablation/{dataset}/trial{trial}.log",
    benchmark:
        "results/benchmarks/ablation/{dataset}/trial{trial}.tsv"
    conda:
        "../envs/train.yaml"
    threads: GPU_RULE_THREADS
    resources:
        gpu=1,
    params:
        train=config["train"],
        seed=lambda wc: config["seed"] + int(wc.trial),
        backend=config["keras_backend"],
    script:
        "../scripts/ablation.py"
