# GridTwin: the README's two commands are `make demo` and `make test`.
# Each creates ./.venv (Python >= 3.11) and installs the package into it when
# pyproject.toml is newer than the last install.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= results

.PHONY: help venv demo test test-all bench bench-long clean

help:
	@echo "make demo      set up .venv and run scenarios/quickstart.toml into $(OUT)/quickstart/"
	@echo "make test      set up .venv and run the test suite (slow tests excluded)"
	@echo "make test-all  the whole suite, slow tests included"
	@echo "make bench     benchmarks (bench/run.py: m100_day, host100_day, gw_day, scaling), JSON on stdout"
	@echo "make bench-long  the year-long benchmark (m100_year, up to ~1 h)"
	@echo "make clean     remove .venv and $(OUT)/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "GridTwin needs Python >= 3.11; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/gridtwin run scenarios/quickstart.toml --out $(OUT) --force

test: $(STAMP)
	$(BIN)/python -m pytest --durations=15

test-all: $(STAMP)
	$(BIN)/python -m pytest --durations=15 -m "slow or not slow"

bench: $(STAMP)
	$(BIN)/python bench/run.py --repeat 3 --json

bench-long: $(STAMP)
	$(BIN)/python bench/run.py --only m100_year --repeat 1 --json

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
