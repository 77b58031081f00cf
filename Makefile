# The two README commands. Each sets up the virtual environment (.venv, exact pins from
# requirements.lock) on first use, so both work on a fresh clone with only python3 present.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.rlx-installed

.PHONY: quickstart test lint bench clean-venv

$(STAMP): requirements.lock pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/rlx sweep sweeps/quickstart.toml --out runs/quickstart

# One pytest worker per core (pytest-xdist); a test module stays on one worker, so its
# module-scoped fixtures (trained runs shared by several tests) are built once.
TEST_WORKERS ?= auto

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(VENV)/bin/rlx bench --out results/bench

clean-venv:
	rm -rf $(VENV)
