# Stage 7: the paper's tables and figures, made only from the other stages' outputs (docs/method.md#outputs).
# Only the figure rules take config["figures"], so restyling reruns only them.
# Names of tables and figures, and the experiments each uses: bractivate.outputs (rules/common.smk).


# One rule per table of bractivate.report.jobs.TABLE_JOBS, named after its file, reading only its
# own inputs (bractivate.outputs.TABLE_INPUTS): a change to one table's inputs reruns that table.
for _key, _table in table_names().items():

    rule:
        name:
            _table
        input:
            **table_inputs(_key),
        output:
            **{
                ext: table_path(_table, ext)
                for ext in table_formats(_key)
                if ext != "html"
            },
            html=report(
                f"results/tables/{_table}.html",
                caption=f"../report/{_table}.rst",
                category="Tables",
            ),
        log:
            f"logs/tables/{_table}.log",
        benchmark:
            f"results/benchmarks/tables/{_table}.tsv"
        conda:
            "../envs/plot.yaml"
        params:
            table=_key,
        script:
            "../scripts/tables.py"


rule claims:
    input:
        train=train_outputs(CLAIM_EXPERIMENTS),
        searches=search_outputs([BRACTIVATE, CONTROL]) if CONTROL in EXPERIMENTS else [],
        ablation=ablation_outputs(),
        baselines=baseline_outputs(),
    output:
        claims=table_path(CLAIMS_TABLE, "tsv"),
        claims_md=table_path(CLAIMS_TABLE, "md"),
        claims_tex=table_path(CLAIMS_TABLE, "tex"),
        claims_html=report(
            f"results/tables/{CLAIMS_TABLE}.html",
            caption="../report/claims.rst",
            category="Tables",
        ),
    log:
        "logs/claims/claims.log",
    benchmark:
        "results/benchmarks/claims/claims.tsv"
    conda:
        "../envs/plot.yaml"
    script:
        "../scripts/claims.py"


for _figure in FIGURES:

    rule:
        name:
            _figure
        input:
            **figure_inputs(_figure),
        output:
            png=report(
                f"results/figures/{_figure}.png",
                caption=f"../report/{_figure}.rst",
                category="Figures",
            ),
            pdf=figure_path(_figure, "pdf"),
        log:
            f"logs/figures/{_figure}.log",
        benchmark:
            f"results/benchmarks/figures/{_figure}.tsv"
        conda:
            "../envs/plot.yaml"
        params:
            style=config["figures"],
        script:
            "../scripts/figure.py"
