# speedlimit: `make run` sets up .venv from the pins and runs the pipeline; `make test` tests.
# Offline (no route to FashionMNIST's hosts): make run SOURCE=synthetic
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SNAKEMAKE := $(BIN)/snakemake
SOURCE ?=
CONFIG_ARGS := $(if $(SOURCE),--config data='{source: $(SOURCE)}')
# More snakemake arguments for run and report, e.g. ARGS="--configfile config.yaml configs/measure.yaml"
ARGS ?=

.PHONY: help venv run demo report test lint bench noise simulate lock clean

help:
	@echo "make run [SOURCE=synthetic]  set up .venv and run the whole grid (snakemake --cores all)"
	@echo "make demo                    the whole pipeline on a tiny synthetic grid (.test/), in demo/: ~1 min"
	@echo "make report [SOURCE=..]      build report.html from the finished run (same SOURCE/ARGS as run)"
	@echo "make test                    set up .venv and run the test suite"
	@echo "make lint                    snakemake --lint and snakefmt --check"
	@echo "make bench                   benchmark the pipeline's own overhead"
	@echo "make noise                   measure this machine's timing noise (docs/benchmarks.md)"
	@echo "make simulate                the race's error rate and power, simulated (docs/statistics.md)"
	@echo "make lock                    regenerate requirements.lock from .venv"
	@echo "make venv                    only set up .venv from the pins"
	@echo "make clean                   remove results, logs, .snakemake and report.html"

$(STAMP): requirements.txt requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt -c requirements.lock
	touch $@

venv: $(STAMP)

run: $(STAMP)
	$(SNAKEMAKE) --cores all $(CONFIG_ARGS) $(ARGS)

# The .test/ configuration end to end, raced, in a copy of the workflow in demo/: the shape
# of the output in about a minute, before the real run. Nothing in results/ is touched; a
# second `make demo` has nothing to do and prints the answer it has.
DEMO_FILES := Snakefile config.yaml rules scripts schemas report reference envs profiles .test
demo: $(STAMP)
	mkdir -p demo
	cp -rpu $(DEMO_FILES) demo/
	cd demo && $(abspath $(SNAKEMAKE)) --cores all --configfile config.yaml .test/config/config.yaml \
	  --config train='{repeats: auto, max_rounds: 6, budget: 2m}'
	@echo "(make demo: its files are under demo/, the real run's under results/)"

report: $(STAMP)
	$(SNAKEMAKE) --report report.html $(CONFIG_ARGS) $(ARGS)

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(SNAKEMAKE) --lint
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/ruff check --select F,E9 scripts tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py

noise: $(STAMP)
	$(BIN)/python benchmarks/noise.py

simulate: $(STAMP)
	$(BIN)/python benchmarks/race_simulation.py

lock: $(STAMP)
	( echo "# Every package of the pipeline's environment, pinned: pip constraints for the Makefile."; \
	  echo "# Regenerate with: make lock"; \
	  echo "# python==$$($(BIN)/python -c 'import platform; print(platform.python_version())')"; \
	  $(BIN)/pip freeze --exclude-editable ) > requirements.lock

clean:
	rm -rf results logs .snakemake report.html demo
