# Stage 1-2: obtain each data set (download, or generate the synthetic stand-in), then
# preprocess it to one HDF5 file (docs/data.md).


rule download:
    output:
        manifest="resources/raw/{dataset}.json",
    log:
        "logs/download/{dataset}.log",
    conda:
        "../envs/data.yaml"
    params:
        entry=lambda wc: config["datasets"][wc.dataset],
        # Downloads live outside the declared output so a failed job keeps its partial files
        # and the next run resumes them.
        root=lambda wc: f"resources/downloads/{wc.dataset}",
        # Digests recorded on first download: outside resources/, to be committed (docs/data.md).
        checksums=lambda wc: f"{config['downloads']['checksums']}/{wc.dataset}.sha256",
        strict=config["downloads"]["strict"],
    script:
        "../scripts/download.py"


rule preprocess:
    input:
        raw=raw_input,
    output:
        h5="resources/{dataset}.h5",
    log:
        "logs/preprocess/{dataset}.log",
    benchmark:
        "results/benchmarks/preprocess/{dataset}.tsv"
    conda:
        "../envs/data.yaml"
    params:
        entry=lambda wc: config["datasets"][wc.dataset],
        image_size=config["image_size"],
        split=config["split"],
        seed=config["seed"],
    script:
        "../scripts/preprocess.py"
