# Stage 5 (opt-in, `snakemake export_all`): each chosen experiment's trained models as ONNX and
# a bioimage.io model package, each checked by onnxruntime and by bioimage.io's own model test.


rule export:
    input:
        model="results/train/{dataset}/{experiment}/trial{trial}/model.keras",
        metrics="results/train/{dataset}/{experiment}/trial{trial}/metrics.json",
        data="resources/{dataset}.h5",
        best="results/search/{dataset}/{experiment}/trial{trial}/best_genome.json",
    output:
        package=directory("results/export/{dataset}/{experiment}/trial{trial}"),
    log:
        "logs/export/{dataset}/{experiment}/trial{trial}.log",
    conda:
        "../envs/export.yaml"
    params:
        tolerance=config["export"]["tolerance"],
        backend="torch",  # the ONNX export goes through PyTorch
    script:
        "../scripts/export.py"
