# Two commands: `make run` and `make test`. Both create .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch is installed first and pinned for every later install, so pip never swaps in a CUDA build.
# On a CPU machine without a local CPU wheel, use e.g.
#   make TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" test
TORCH_PIP_ARGS ?=
CONFIG ?= configs/tiny.yaml

.PHONY: run test test-slow bench install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIP_ARGS) -r constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/curriculum run $(CONFIG)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .cache runs
