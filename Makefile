# GridTwin: the README's two commands are `make demo` and `make test`.
# Each creates ./.venv (Python >= 3.11) and installs the package into it when
# pyproject.toml is newer than the last install.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= results
# The ahead-of-time compiled kernels (twin/aot.py): built for this machine after the install
# and whenever a kernel source changes; `make AOT=0 ...` skips them (runs then use numba's JIT:
# the same results, ~0.35 s more start-up per run).
AOT     ?= 1
KERNELS := twin/_aot_kernels.json
KERNEL_SOURCES := twin/aot.py twin/control/tier2_ar.py twin/control/tier1_pid.py twin/facility/gpu_fleet.py
ifeq ($(AOT),1)
SETUP := $(STAMP) $(KERNELS)
else
SETUP := $(STAMP)
endif

.PHONY: help venv kernels demo test test-all bench bench-long clean

help:
	@echo "make demo      set up .venv and run scenarios/quickstart.toml into $(OUT)/quickstart/"
	@echo "make test      set up .venv and run the test suite (slow tests excluded)"
	@echo "make test-all  the whole suite, slow tests included"
	@echo "make bench     benchmarks (bench/run.py: m100_day, host100_day, gw_day, scaling), JSON on stdout"
	@echo "make bench-long  the year-long benchmark (m100_year, up to ~1 h)"
	@echo "make kernels   (re)build the ahead-of-time compiled kernels for this machine (done by the others)"
	@echo "make clean     remove .venv, the built kernels and $(OUT)/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "GridTwin needs Python >= 3.11; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

$(KERNELS): $(STAMP) $(KERNEL_SOURCES)
	$(BIN)/python -m twin.aot build

kernels: $(STAMP)
	$(BIN)/python -m twin.aot build

demo: $(SETUP)
	$(BIN)/gridtwin run scenarios/quickstart.toml --out $(OUT) --force

# GRIDTWIN_REQUIRE_AOT: the tests of the AOT kernels fail, not skip, without a fresh build
test: $(SETUP)
	GRIDTWIN_REQUIRE_AOT=$(AOT) $(BIN)/python -m pytest --durations=15

test-all: $(SETUP)
	GRIDTWIN_REQUIRE_AOT=$(AOT) $(BIN)/python -m pytest --durations=15 -m "slow or not slow"

bench: $(SETUP)
	$(BIN)/python bench/run.py --repeat 3 --json

bench-long: $(SETUP)
	$(BIN)/python bench/run.py --only m100_year --repeat 1 --json

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache twin/_aot_kernels*
