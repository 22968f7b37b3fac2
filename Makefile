# kmallocwd: `make run` runs the main job, `make test` runs the tests.
# Both bootstrap .venv and (re)build the C extension whenever csrc/ changes.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEPS   := $(VENV)/.deps-stamp
EXT    := kmallocwd/.ext-stamp
CSRC   := $(wildcard csrc/*.c csrc/*.h)

.PHONY: all build run demo test bench clean

all: build

$(PY):
	$(PYTHON) -m venv $(VENV)

$(DEPS): pyproject.toml setup.py | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip setuptools cffi
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

$(EXT): $(DEPS) $(CSRC) kmallocwd/_build.py
	$(PY) setup.py -q build_ext --inplace 2>&1 | grep -v -i -E 'warn|beta' || true
	$(PY) -c 'import kmallocwd._kmallocwd'
	touch $@

build: $(EXT)

run: build
	$(PY) -m kmallocwd demo

demo: run

test: build
	$(PY) -m pytest -q

bench: build
	$(PY) -m pytest bench --benchmark-only

clean:
	rm -rf build kmallocwd/_kmallocwd*.so kmallocwd/_kmallocwd.c $(EXT) *.egg-info
