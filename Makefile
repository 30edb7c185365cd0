# The two commands of the README: `make run` and `make test`. Each installs what it needs
# into a local virtual environment first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
OUT ?= out
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: install browser run test test-all bench lint format golden images test-images clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium (Debian package) for the test that opens the UI reports in a browser.
# Installed as root or with passwordless sudo; otherwise say so: that test then skips
# (and fails under CI=true, so CI cannot pass it without a browser).
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	elif sudo -n true 2>/dev/null; then \
	  sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium; \
	else echo "chromium missing and no root: the report browser test will skip"; fi

# The whole train-to-engine pipeline on the bundled (generated) sample data.
run: install
	$(VENV)/bin/tlt pipeline run --local --output $(OUT)

test: install browser
	$(PY) -m pytest -m "not slow" -q -n 2

test-all: install browser
	$(PY) -m pytest -q -n 2

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# Rewrite the golden files of the compiled pipeline IR (tests/golden/); review the diff.
golden: install
	$(PY) tests/golden_ir.py

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Container images: needs a Docker engine with buildx (none exists on the CI machine).
images:
	$(MAKE) -C images all

# Build tlt-core with podman on a Debian base made here and run its in-image checks as build
# steps (tlt --help, sample-data, a tiny train, a KFP component's executor); then trt-x86 up
# to its TensorRT layer. Root, podman and network to the package registries: not in CI.
test-images:
	time bash images/test-images.sh

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
