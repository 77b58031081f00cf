# The two README commands. Each sets up the virtual environment (.venv, exact pins from
# requirements.lock) on first use, so both work on a fresh clone with only python3 present.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.rlx-installed

.PHONY: quickstart test test-all lint docs bench gpu-wheels clean-venv

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

# Two tiers. `make test`: the fast tier (every module imported, every algorithm's update
# traced, every CLI command's happy and error paths at tiny budgets, every sweep file at both
# budgets, the docs built): a few minutes on 2 cores. `make test-all`: everything (learning
# tests, equivalence, distributed, MJX/Playground, kill/resume), what CI runs; tests/conftest.py
# starts the heaviest modules first so that none runs last on one worker.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope -m "not slow"

test-all: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# The documentation site (docs/, mkdocs.yml) into site/; --strict: a broken link, a missing
# results file or a renamed documented function fails the build (tests/test_docs.py too).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(VENV)/bin/rlx bench --out results/bench

# For a session lent a GPU (README, "On a lent GPU"): the packages rlx needs that the
# machine's image (Python 3.12, JAX with CUDA, flax, optax, chex, orbax) lacks, as wheels for
# .whl/, and .whl/manifest.json naming this commit for provenance there (refused for a dirty
# tree). Then: device run `bash sweeps/gpu_check.sh`, carrying .whl.
GPU_WHEELS := brax==0.14.2 mujoco==3.17.0 mujoco-mjx==3.17.0 trimesh==5.2.0 \
	ml_collections==1.1.0 tensorboardX==2.6.5 glfw==2.11.0 PyOpenGL==3.1.10 jaxopt==0.8.5
GPU_PLATFORMS := --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
	--platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64

gpu-wheels: $(STAMP)
	rm -rf .whl && mkdir -p .whl
	$(VENV)/bin/python -m pip download -q --no-deps --only-binary=:all: $(GPU_PLATFORMS) \
		-d .whl $(GPU_WHEELS)
	$(VENV)/bin/python -c "from rlx.provenance import write_manifest; print(write_manifest()['revision'])"

clean-venv:
	rm -rf $(VENV)
