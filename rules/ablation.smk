# Stage 5: ablate the dendrites of the most active block of each trained model (docs/method.md#ablation).


rule ablation:
    input:
        data="resources/{dataset}.h5",
        best=f"results/search/{{dataset}}/{ABLATED}/trial{{trial}}/best_genome.json",
        model=f"results/train/{{dataset}}/{ABLATED}/trial{{trial}}/model.keras",
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
