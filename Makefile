# kmallocwd: `make run` runs the main job, `make test` runs the tests.
# Both bootstrap .venv and (re)build the C extension whenever csrc/ changes.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEPS   := $(VENV)/.deps-stamp
EXT    := kmallocwd/.ext-stamp
CSRC   := $(wildcard csrc/*.c csrc/*.h kmallocwd/protocols/*.toml kmallocwd/protocols/*.py)

.PHONY: all build run demo test test-quick bench docs clean tsan

all: build

$(PY):
	$(PYTHON) -m venv $(VENV)

$(DEPS): pyproject.toml setup.py | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip setuptools cffi
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

# A failed compile stops make (and shows the log); compiler warnings are shown.
$(EXT): $(DEPS) $(CSRC) kmallocwd/_build.py kmallocwd/_cdefs.py
	@mkdir -p build
	$(PY) setup.py -q build_ext --inplace --force > build/ext.log 2>&1 || { cat build/ext.log; exit 1; }
	@grep -E 'csrc/.*(warning|error):' build/ext.log || true
	$(PY) -c 'import kmallocwd._kmallocwd'
	touch $@

build: $(EXT)

# `make run`: the seed's example (oom-livelock) with a 5 s timeout: two
# reports (at ~6.5 s and ~11.5 s), then the summary, in 15 s.
run: build
	$(PY) -m kmallocwd run --scenario oom-livelock --timeout 5 --duration 15

demo: build
	$(PY) -m kmallocwd demo

# The suite runs on every core (pytest-xdist, -n auto; the tests that start
# Dask clusters share one worker: --dist loadfile) and also writes JUnit XML
# (build/junit.xml), as CI reporters read it.
test: build
	$(PY) -m pytest -q -n auto --dist loadfile --junitxml=build/junit.xml

# `make test-quick`: the suite without the tests marked slow (pyproject.toml's
# markers), in under a minute; `make test` (and .ci/run) runs them all.
test-quick: build
	$(PY) -m pytest -q -n auto --dist loadfile -m 'not slow'

# `make bench`: the benchmarks in bench/ (pytest-benchmark).  Each run is
# saved under bench/results/ (pytest-benchmark's storage, for
# --benchmark-compare) and as bench/results/latest.json, which
# `kmallocwd bench-report` then prints.  BENCH_ARGS passes more options,
# e.g. BENCH_ARGS='--kmw-scale 0.1 -k seqcount'.
BENCH_RESULTS := bench/results
BENCH_ARGS    ?=

BENCH_DEPS := $(VENV)/.bench-deps-stamp

$(BENCH_DEPS): pyproject.toml | $(DEPS)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[bench]'
	touch $@

bench: build $(BENCH_DEPS)
	$(PY) -m pytest bench --benchmark-only -q \
		--benchmark-autosave --benchmark-storage=$(BENCH_RESULTS) \
		--benchmark-json=$(BENCH_RESULTS)/latest.json \
		--benchmark-columns=min,median,max,rounds $(BENCH_ARGS)
	$(PY) -m kmallocwd bench-report $(BENCH_RESULTS)/latest.json

# `make docs`: the docs site (mkdocs.yml, docs/) into build/site, with
# --strict (a warning, a broken link or anchor included, fails the build;
# never -q, which hides the warnings from --strict too).
# The command reference and the protocol table are generated from the code.
DOCS_DEPS := $(VENV)/.docs-deps-stamp

$(DOCS_DEPS): pyproject.toml | $(DEPS)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[docs]'
	touch $@

docs: $(DOCS_DEPS)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --clean

clean:
	rm -rf build kmallocwd/_kmallocwd*.so kmallocwd/_kmallocwd.c $(EXT) *.egg-info

# ThreadSanitizer on the C loops alone: c11 must be clean, seqcount is not.
tsan: build/race-tsan
	./build/race-tsan c11 200000
	-./build/race-tsan seqcount 200000 2>&1 | grep -m1 -A3 'data race'

build/race-tsan: csrc/tools/race.c $(CSRC) $(EXT)
	mkdir -p build
	$(CC) -fsanitize=thread -Wno-tsan -O1 -g -DKMW_BUILD_C11 -Icsrc csrc/tools/race.c csrc/api.c build/gen/kmw_protocols.c csrc/clock.c csrc/slots.c -lpthread -o $@
