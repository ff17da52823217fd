# Stage 7: the paper's tables and figures, made only from the other stages' outputs (SPEC §12,
# STYLE §4). Only the figure rules take config["figures"], so restyling reruns only them.


rule tables:
    input:
        train=train_outputs(REPORT_EXPERIMENTS["tables"]),
        all_train=train_outputs(),
        baselines=baseline_outputs(),
        ablation=ablation_outputs(),
        histories=SEARCH_HISTORIES,  # Table 3: the searches' own clocks
    output:
        table2="results/tables/table2_dice.tsv",
        table2_html=report(
            "results/tables/table2_dice.html",
            caption="../report/table2.rst",
            category="Tables",
        ),
        table2_md="results/tables/table2_dice.md",
        table2_tex="results/tables/table2_dice.tex",
        table3="results/tables/table3_search_hours.tsv",
        table3_html=report(
            "results/tables/table3_search_hours.html",
            caption="../report/table3.rst",
            category="Tables",
        ),
        table3_md="results/tables/table3_search_hours.md",
        table3_tex="results/tables/table3_search_hours.tex",
        ablation="results/tables/table_ablation.tsv",
        ablation_html=report(
            "results/tables/table_ablation.html",
            caption="../report/table_ablation.rst",
            category="Tables",
        ),
        ablation_md="results/tables/table_ablation.md",
        ablation_tex="results/tables/table_ablation.tex",
        activation="results/tables/table_activation.tsv",
        activation_html=report(
            "results/tables/table_activation.html",
            caption="../report/table_activation.rst",
            category="Tables",
        ),
        activation_md="results/tables/table_activation.md",
        activation_tex="results/tables/table_activation.tex",
        activation_trials="results/tables/table_activation_trials.tsv",
        activation_trials_html=report(
            "results/tables/table_activation_trials.html",
            caption="../report/table_activation_trials.rst",
            category="Tables",
        ),
        dice_time="results/tables/table_dice_time.tsv",
        dice_time_html=report(
            "results/tables/table_dice_time.html",
            caption="../report/table_dice_time.rst",
            category="Tables",
        ),
        dice_time_md="results/tables/table_dice_time.md",
        dice_time_tex="results/tables/table_dice_time.tex",
        paired="results/tables/paired_main_random.tsv",
        paired_html=report(
            "results/tables/paired_main_random.html",
            caption="../report/paired.rst",
            category="Tables",
        ),
        paired_md="results/tables/paired_main_random.md",
        paired_tex="results/tables/paired_main_random.tex",
        paired_trials="results/tables/paired_main_random_trials.tsv",
        paired_trials_html=report(
            "results/tables/paired_main_random_trials.html",
            caption="../report/paired_trials.rst",
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


rule fig4:
    input:
        best=search_outputs(REPORT_EXPERIMENTS["fig4"]),
    output:
        png=report(
            "results/figures/fig4.png",
            caption="../report/fig4.rst",
            category="Figures",
        ),
        pdf="results/figures/fig4.pdf",
    log:
        "logs/fig4/fig4.log",
    benchmark:
        "results/benchmarks/fig4/fig4.tsv"
    conda:
        "../envs/plot.yaml"
    params:
        style=config["figures"],
    script:
        "../scripts/figure.py"


rule fig5:
    input:
        metrics=train_outputs(REPORT_EXPERIMENTS["fig5"]),
        best=search_outputs(REPORT_EXPERIMENTS["fig5"]),
    output:
        png=report(
            "results/figures/fig5.png",
            caption="../report/fig5.rst",
            category="Figures",
        ),
        pdf="results/figures/fig5.pdf",
    log:
        "logs/fig5/fig5.log",
    benchmark:
        "results/benchmarks/fig5/fig5.tsv"
    conda:
        "../envs/plot.yaml"
    params:
        style=config["figures"],
    script:
        "../scripts/figure.py"


rule fig6:
    input:
        ablation=expand(
            "results/ablation/{dataset}/trial{trial}/metrics.json",
            dataset=DATASETS,
            trial=TRIALS[0],
        ),
        activations=expand(
            "results/ablation/{dataset}/trial{trial}/activations.h5",
            dataset=DATASETS,
            trial=TRIALS[0],
        ),
    output:
        png=report(
            "results/figures/fig6.png",
            caption="../report/fig6.rst",
            category="Figures",
        ),
        pdf="results/figures/fig6.pdf",
    log:
        "logs/fig6/fig6.log",
    benchmark:
        "results/benchmarks/fig6/fig6.tsv"
    conda:
        "../envs/plot.yaml"
    params:
        style=config["figures"],
    script:
        "../scripts/figure.py"


rule fig7:
    input:
        metrics=train_outputs(REPORT_EXPERIMENTS["fig7"]),
        baselines=baseline_outputs(),
    output:
        png=report(
            "results/figures/fig7.png",
            caption="../report/fig7.rst",
            category="Figures",
        ),
        pdf="results/figures/fig7.pdf",
    log:
        "logs/fig7/fig7.log",
    benchmark:
        "results/benchmarks/fig7/fig7.tsv"
    conda:
        "../envs/plot.yaml"
    params:
        style=config["figures"],
    script:
        "../scripts/figure.py"


rule fig9:
    input:
        metrics=train_outputs(REPORT_EXPERIMENTS["fig9"]),
        best=search_outputs(REPORT_EXPERIMENTS["fig9"]),
    output:
        png=report(
            "results/figures/fig9.png",
            caption="../report/fig9.rst",
            category="Figures",
        ),
        pdf="results/figures/fig9.pdf",
    log:
        "logs/fig9/fig9.log",
    benchmark:
        "results/benchmarks/fig9/fig9.tsv"
    conda:
        "../envs/plot.yaml"
    params:
        style=config["figures"],
    script:
        "../scripts/figure.py"


rule search_traces:
    input:
        history=SEARCH_HISTORIES,
    output:
        png=report(
            "results/figures/search_traces.png",
            caption="../report/search_traces.rst",
            category="Figures",
        ),
        pdf="results/figures/search_traces.pdf",
    log:
        "logs/search_traces/search_traces.log",
    benchmark:
        "results/benchmarks/search_traces/search_traces.tsv"
    conda:
        "../envs/plot.yaml"
    params:
        style=config["figures"],
    script:
        "../scripts/figure.py"
