# Stage 4: the report's words and browsable tables (figures: rules/summarize.smk).


rule findings:
    input:
        summary="results/summary.csv",
        table="results/table.csv",
        skipped="results/skipped.csv",
        published=get_published_table(),
        decisions=get_decisions,
        checks=get_check_files,
    output:
        md="results/findings.md",
        rst="results/report/description.rst",
        recommendation=report(
            "results/recommendation.yaml",
            caption="../report/recommendation.rst",
            category="1. Findings",
            labels={"page": "recommendation.yaml: the DataLoader settings to use"},
        ),
        config=report(
            "results/report/reproduce.yaml",
            caption="../report/reproduce.rst",
            category="1. Findings",
            labels={"page": "reproduce.yaml: the effective configuration"},
        ),
        html=report(
            "results/report/findings.html",
            caption="../report/findings.rst",
            category="1. Findings",
            labels={"page": "findings, hardware, how to reproduce"},
        ),
        comparison=report(
            "results/published_vs_reproduced.csv",
            caption="../report/published_table.rst",
            category="5. Tables",
            subcategory="download (CSV)",
            labels={"table": "published vs reproduced"},
        ),
        comparison_html=report(
            "results/report/published_vs_reproduced.html",
            caption="../report/published_table.rst",
            category="2. Published vs reproduced",
            labels={"figure": "published vs reproduced, cell by cell (table)"},
        ),
    log:
        "logs/findings.log",
    conda:
        "../envs/report.yaml"
    params:
        config=json.dumps(config, sort_keys=True),
        code=code_digest("scripts/findings.py"),
    script:
        "../scripts/findings.py"


rule tables:
    input:
        table="results/table.csv",
        summary="results/summary.csv",
    output:
        table=report(
            "results/report/table.html",
            caption="../report/table.rst",
            category="5. Tables",
            subcategory="browse (sortable)",
            labels={"table": "results (one row per run and epoch)"},
        ),
        summary=report(
            "results/report/summary.html",
            caption="../report/summary.rst",
            category="5. Tables",
            subcategory="browse (sortable)",
            labels={"table": "summary (one row per cell)"},
        ),
    log:
        "logs/tables.log",
    conda:
        "../envs/report.yaml"
    params:
        code=code_digest("scripts/tables.py"),
    script:
        "../scripts/tables.py"
