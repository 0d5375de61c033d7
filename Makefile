# Two commands on a fresh clone:  `make run` (gateway on the embedded default) and `make test`.
VENV   ?= .venv
PYTHON ?= python3
STAMP  := $(VENV)/.installed-stamp
# The CPU build of torch lies on this disk; constraints.txt pins it so pip never pulls CUDA.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PACKAGES := gateway customize adapters_local dashboards

.PHONY: run test lint install

# pip prints what it fetches and installs: the first install takes minutes, and says so.
$(STAMP): pyproject.toml constraints.txt
	@echo "strata: installing into $(VENV) (the first time takes a few minutes)"
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install --progress-bar on -c constraints.txt $(FIND_LINKS) -e '.[dev]'
	touch $(STAMP)
	@echo "strata: installed; the SDKs (openai, boto3) are in $(VENV)/bin/python"

install: $(STAMP)

# `make run PORT=9000 HOST=0.0.0.0`; unset, the gateway's own defaults (STRATA_* or 8080).
run: $(STAMP)
	$(VENV)/bin/strata serve $(if $(PORT),--port $(PORT)) $(if $(HOST),--host $(HOST))

lint: $(STAMP)
	$(VENV)/bin/ruff check $(PACKAGES) tests bench
	$(VENV)/bin/ruff format --check $(PACKAGES) tests bench
	$(VENV)/bin/mypy

# Two worker processes (pytest-xdist), each test file on one of them (--dist loadfile: a file's
# module fixtures, such as a trained model or a gateway, are built once). Many tests wait on
# subprocesses, timers and sockets, so the two overlap well on two cores. Files are handed out
# in collection order, which tests/conftest.py starts with the slow (training) files; xdist's
# own order (most tests first) left those to the end. `make test TEST_WORKERS=0`: one process.
TEST_WORKERS ?= 2
test: lint
	$(VENV)/bin/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
