# Two commands: `make run` (the main job) and `make test` (the whole suite).
# Each creates .venv on first use and installs the package with the pins of constraints.txt.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export KERAS_BACKEND := tensorflow
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

.PHONY: run test test-fast bench notebooks lint clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[dev,test,ray]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/rlaif-lab run --preset default --out runs/default --resume

# tests run in parallel test processes, one per core (at most 4), each on one thread; a
# module's tests stay in one process unless tests/conftest.py spreads them (--dist loadgroup)
TEST_PROCS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

test: $(STAMP)
	$(PY) -m pytest -q --durations=30 -n $(TEST_PROCS) --dist loadgroup

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "unit or parity" -n $(TEST_PROCS) --dist loadgroup

bench: $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[bench]'
	# LitGPT pins huggingface-hub < 1.4, which transformers 5 does not allow; the bench uses
	# only its model (litgpt.model.GPT), which needs lightning and nothing of the hub
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt --no-deps litgpt
	$(PY) bench/peers.py
	$(PY) bench/bench_cartpole.py
	$(PY) bench/bench_bridge.py
	$(PY) bench/bench_feedback.py
	$(PY) bench/bench_frameworks.py

notebooks: $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt notebook
	$(VENV)/bin/jupyter notebook notebooks/

lint: $(STAMP)
	$(VENV)/bin/ruff check lm_torch rl_tf bridge rlaif_lab tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
