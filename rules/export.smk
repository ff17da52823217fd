# Stage 5 (opt-in, `snakemake export_all`): each chosen experiment's trained models as ONNX and
# a bioimage.io model package, each checked by onnxruntime and by bioimage.io's own model test.


rule export:
    input:
        model=rules.train_best.output.model,
        metrics=rules.train_best.output.metrics,
        data=rules.preprocess.output.h5,
        best=rules.search.output.best,
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
