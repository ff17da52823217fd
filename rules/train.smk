# Stage 4: train the best genome of each search in full (docs/method.md#experiments).


rule train_best:
    input:
        data=rules.preprocess.output.h5,
        best=rules.search.output.best,
    output:
        model="results/train/{dataset}/{experiment}/trial{trial}/model.keras",
        metrics="results/train/{dataset}/{experiment}/trial{trial}/metrics.json",
        history="results/train/{dataset}/{experiment}/trial{trial}/history.tsv",
    log:
        "logs/train_best/{dataset}/{experiment}/trial{trial}.log",
    benchmark:
        "results/benchmarks/train_best/{dataset}/{experiment}/trial{trial}.tsv"
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
        "../scripts/train_best.py"
