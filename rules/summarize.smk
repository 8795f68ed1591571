# Stage 3: the results table, the summary, the figures.


rule aggregate:
    input:
        runs=get_run_files,
        decisions=get_decisions,
    output:
        table=report(
            "results/table.csv",
            caption="../report/table.rst",
            category="5. Tables",
            subcategory="download (CSV)",
            labels={"table": "results (one row per run and epoch)"},
        ),
        summary=report(
            "results/summary.csv",
            caption="../report/summary.rst",
            category="5. Tables",
            subcategory="download (CSV)",
            labels={"table": "summary (one row per cell)"},
        ),
        skipped="results/skipped.csv",
    log:
        "logs/aggregate.log",
    conda:
        "../envs/report.yaml"
    params:
        skipped=[[cell.path, reason] for cell, reason in SKIPPED],
        allow_missing=config["report"]["allow_missing"],
        code=code_digest("scripts/aggregate.py"),
    script:
        "../scripts/aggregate.py"


rule plot:
    input:
        table="results/table.csv",
        summary="results/summary.csv",
        published=get_published_table(),
        decisions=get_decisions,
    output:
        epoch_duration=report(
            "results/plots/epoch_duration.png",
            caption="../report/epoch_duration.rst",
            category="3. Speed",
            subcategory="duration and speed-up",
            labels={"figure": "epoch duration vs num_workers"},
        ),
        speedup=report(
            "results/plots/speedup.png",
            caption="../report/speedup.rst",
            category="3. Speed",
            subcategory="duration and speed-up",
            labels={"figure": "speed-up over num_workers=0"},
        ),
        prediction=report(
            "results/plots/prediction.png",
            caption="../report/prediction.rst",
            category="3. Speed",
            subcategory="duration and speed-up",
            labels={"figure": "measured vs predicted speed-up"},
        ),
        race=report(
            "results/plots/race.png",
            caption="../report/race.rst",
            category="1. Findings",
            labels={"figure": "the race: intervals after every round"},
        ),
        time_split=report(
            "results/plots/time_split.png",
            caption="../report/time_split.rst",
            category="3. Speed",
            subcategory="waiting for data",
            labels={"figure": "where the time goes"},
        ),
        quality=report(
            "results/plots/quality.png",
            caption="../report/quality.rst",
            category="4. Quality",
            labels={"figure": "loss and accuracy per cell"},
        ),
        published=report(
            "results/plots/published.png",
            caption="../report/published.rst",
            category="2. Published vs reproduced",
            labels={"figure": "published vs reproduced speed-up"},
        ),
    log:
        "logs/plot.log",
    conda:
        "../envs/report.yaml"
    params:
        code=code_digest("scripts/plot.py"),
    script:
        "../scripts/plot.py"
