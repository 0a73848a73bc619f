# stepfuse — the README's commands. Each target sets up .venv by itself, from nothing.
#   make demo    offline fusion demo
#   make test    every check CI runs
#   make bench   benchmarks (ONLY=substring selects)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTHON ?= python3
EXTRAS ?= dev,torch,hf
STAMP := $(VENV)/.stepfuse-deps
# Debian packages the tests or the demo need (installed when missing and apt-get is usable).
APT_PACKAGES ?=
# Without a GPU, Triton kernels run in the interpreter.
TRITON_INTERPRET ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 0 || echo 1)
export PYO3_PYTHON := $(abspath $(PY))
export PATH := $(HOME)/.cargo/bin:$(PATH)
export HYPOTHESIS_PROFILE ?= ci

.PHONY: all venv build test demo bench rust-check py-check pytest wheel-check apt clean

all: test

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[$(EXTRAS)]"
	@touch $(STAMP)

venv: apt $(STAMP)

# Release build of the extension into the venv (incremental after the first time).
build: venv
	$(VENV)/bin/maturin develop --release -q 2>&1 | { grep -v "^Ignoring" || true; }

rust-check:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test -q

py-check: build
	$(VENV)/bin/ruff check python tests benches examples
	$(PY) -m mypy.stubtest stepfuse._core --allowlist stubtest-allowlist.txt

# Build the wheel and import stepfuse + stepfuse.kernels from a fresh venv with numpy only.
wheel-check: build
	rm -rf target/wheels target/wheel-venv
	$(VENV)/bin/maturin build --release -q -o target/wheels
	$(PYTHON) -m venv target/wheel-venv
	target/wheel-venv/bin/python -m pip install -q target/wheels/stepfuse-*.whl
	cd target && wheel-venv/bin/python -c "import sys, stepfuse, stepfuse.kernels; \
	assert 'torch' not in sys.modules, 'import stepfuse must not import torch'; \
	print('wheel ok:', stepfuse.__version__, stepfuse.kernels.__name__)"

pytest: build
	TRITON_INTERPRET=$(TRITON_INTERPRET) $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test: venv rust-check py-check wheel-check pytest

demo: build
	$(PY) -m stepfuse demo $(DEMO_ARGS)

bench: build
	$(PY) benches/run.py $(if $(ONLY),--only $(ONLY),) $(BENCH_ARGS)

clean:
	rm -rf target .venv bench-results
