# driftd — the two commands of the README:
#   make demo    builds driftd (installing libtorch if missing) and runs `driftd demo`
#   make test    the whole test suite (also installs what it needs)
# A user with their own libtorch 2.13 sets LIBTORCH and the venv is skipped for
# the build (the tests still use the venv's Python torch for the interop check).

SHELL := /bin/bash
CARGO ?= cargo
export DRIFTD_VENV ?= $(CURDIR)/.venv
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# Resolve the symlink so the binary's run path does not depend on this checkout.
WITH_LIBTORCH = export LIBTORCH="$${LIBTORCH:-$$(readlink -f $(CURDIR)/.libtorch)}";

.PHONY: demo test build lint bootstrap bootstrap-python clean

demo: build
	$(TARGET_DIR)/release/driftd demo

build: bootstrap
	$(WITH_LIBTORCH) $(CARGO) build --release --locked

test: bootstrap-python
	$(WITH_LIBTORCH) export DRIFTD_PYTHON="$(DRIFTD_VENV)/bin/python" DRIFTD_CRASH_ITERATIONS=200; \
	  $(CARGO) test --release --locked

lint: bootstrap
	$(CARGO) fmt --all -- --check
	$(WITH_LIBTORCH) $(CARGO) clippy --release --locked --all-targets -- -D warnings

bootstrap:
	scripts/bootstrap.sh

bootstrap-python:
	scripts/bootstrap.sh --python

clean:
	$(CARGO) clean
