# Stage 7: the paper's tables and figures, made only from the other stages' outputs (docs/method.md#outputs).
# Only the figure rules take config["figures"], so restyling reruns only them.
# Names of tables and figures, and the experiments each uses: bractivate.outputs (rules/common.smk).


rule tables:
    input:
        train=train_outputs(REPORT_EXPERIMENTS["tables"]),
        all_train=train_outputs(),
        baselines=baseline_outputs(),
        ablation=ablation_outputs(),
        histories=SEARCH_HISTORIES,  # Table 3: the searches' own clocks
    output:
        multiext(
            f"results/tables/{TABLES['table2']}",
            table2=".tsv",
            table2_md=".md",
            table2_tex=".tex",
        ),
        multiext(
            f"results/tables/{TABLES['table3']}",
            table3=".tsv",
            table3_md=".md",
            table3_tex=".tex",
        ),
        multiext(
            f"results/tables/{TABLES['ablation']}",
            ablation=".tsv",
            ablation_md=".md",
            ablation_tex=".tex",
        ),
        multiext(
            f"results/tables/{TABLES['activation']}",
            activation=".tsv",
            activation_md=".md",
            activation_tex=".tex",
        ),
        multiext(
            f"results/tables/{TABLES['dice_time']}",
            dice_time=".tsv",
            dice_time_md=".md",
            dice_time_tex=".tex",
        ),
        multiext(
            f"results/tables/{TABLES['paired']}",
            paired=".tsv",
            paired_md=".md",
            paired_tex=".tex",
        ),
        paired_trials=f"results/tables/{TRIAL_TABLES['paired_trials']}.tsv",
        activation_trials=f"results/tables/{TRIAL_TABLES['activation_trials']}.tsv",
        table2_html=report(
            f"results/tables/{TABLES['table2']}.html",
            caption="../report/table2.rst",
            category="Tables",
        ),
        table3_html=report(
            f"results/tables/{TABLES['table3']}.html",
            caption="../report/table3.rst",
            category="Tables",
        ),
        ablation_html=report(
            f"results/tables/{TABLES['ablation']}.html",
            caption="../report/table_ablation.rst",
            category="Tables",
        ),
        activation_html=report(
            f"results/tables/{TABLES['activation']}.html",
            caption="../report/table_activation.rst",
            category="Tables",
        ),
        dice_time_html=report(
            f"results/tables/{TABLES['dice_time']}.html",
            caption="../report/table_dice_time.rst",
            category="Tables",
        ),
        paired_html=report(
            f"results/tables/{TABLES['paired']}.html",
            caption="../report/paired.rst",
            category="Tables",
        ),
        paired_trials_html=report(
            f"results/tables/{TRIAL_TABLES['paired_trials']}.html",
            caption="../report/paired_trials.rst",
            category="Tables",
        ),
        activation_trials_html=report(
            f"results/tables/{TRIAL_TABLES['activation_trials']}.html",
            caption="../report/table_activation_trials.rst",
            category="Tables",
        ),
    log:
        "logs/tables/tables.log",
    benchmark:
        "results/benchmarks/tables/tables.tsv"
    conda:
        "../envs/plot.yaml"
    script:
        "../scripts/tables.py"


rule claims:
    input:
        train=train_outputs(CLAIM_EXPERIMENTS),
        searches=search_outputs([BRACTIVATE, CONTROL]) if CONTROL in EXPERIMENTS else [],
        ablation=ablation_outputs(),
        baselines=baseline_outputs(),
    output:
        claims=f"results/tables/{CLAIMS_TABLE}.tsv",
        claims_md=f"results/tables/{CLAIMS_TABLE}.md",
        claims_tex=f"results/tables/{CLAIMS_TABLE}.tex",
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


# Each figure's inputs, by the names bractivate.figures.FIGURE_JOBS reads them under.
FIGURE_INPUTS = {
    "fig4": {"best": search_outputs(REPORT_EXPERIMENTS["fig4"])},
    "fig5": {
        "metrics": train_outputs(REPORT_EXPERIMENTS["fig5"]),
        "best": search_outputs(REPORT_EXPERIMENTS["fig5"]),
    },
    # Fig. 6 shows the maps of one trial per data set.
    "fig6": {
        "ablation": expand(
            "results/ablation/{dataset}/trial{trial}/metrics.json",
            dataset=DATASETS,
            trial=TRIALS[0],
        ),
        "activations": expand(
            "results/ablation/{dataset}/trial{trial}/activations.h5",
            dataset=DATASETS,
            trial=TRIALS[0],
        ),
    },
    "fig7": {
        "metrics": train_outputs(REPORT_EXPERIMENTS["fig7"]),
        "baselines": baseline_outputs(),
    },
    "fig9": {
        "metrics": train_outputs(REPORT_EXPERIMENTS["fig9"]),
        "best": search_outputs(REPORT_EXPERIMENTS["fig9"]),
    },
    "search_traces": {"history": SEARCH_HISTORIES},
}


for _figure in FIGURES:

    rule:
        name:
            _figure
        input:
            **FIGURE_INPUTS[_figure],
        output:
            png=report(
                f"results/figures/{_figure}.png",
                caption=f"../report/{_figure}.rst",
                category="Figures",
            ),
            pdf=f"results/figures/{_figure}.pdf",
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
