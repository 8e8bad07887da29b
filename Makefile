# driftd — the two commands of the README:
#   make demo    builds driftd (installing libtorch if missing) and runs `driftd demo`
#   make test    the whole test suite (also installs what it needs)
#   make fuzz    every fuzz target for FUZZ_SECONDS (600) each; make fuzz-TARGET
#                one of policy, parquet, registry, checkpoint (scripts/fuzz.sh)
#   make bench   the benchmark suite: driftd beside a Python + PyTorch peer, one
#                table (DRIFTD_BENCH_RUNS runs per side, default 5)
#   make chaos   the long crash-chaos run: 300 SIGKILLs of the daemon's lifecycle
#   make soak    the long soak: 20,000 files and 50 updates in one daemon run
#   make test-under-load   `make test`'s suite RUNS times (default 5) while
#                every core is kept busy by another process (flakes show here)
# A user with their own libtorch 2.13 sets LIBTORCH and the venv is skipped for
# the build (the tests still use the venv's Python torch for the interop check).
#   make build && sudo make install     the service (see docs/service.md "Install")
#   sudo make uninstall                 removes what install put; keeps an edited
#                                       policy and all state

SHELL := /bin/bash
CARGO ?= cargo
export DRIFTD_VENV ?= $(CURDIR)/.venv
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# Resolve the symlink so the binary's run path does not depend on this checkout.
WITH_LIBTORCH = export LIBTORCH="$${LIBTORCH:-$$(readlink -f $(CURDIR)/.libtorch)}";

.PHONY: demo test test-under-load bench chaos soak build lint bootstrap bootstrap-python clean install uninstall fuzz

demo: build
	$(TARGET_DIR)/release/driftd demo

build: bootstrap
	$(WITH_LIBTORCH) $(CARGO) build --release --locked

test: bootstrap-python
	$(WITH_LIBTORCH) export DRIFTD_PYTHON="$(DRIFTD_VENV)/bin/python" DRIFTD_CRASH_ITERATIONS=200 \
	  DRIFTD_CHAOS_ITERATIONS=40 DRIFTD_SOAK_FILES=1000 DRIFTD_SOAK_UPDATES=5; \
	  $(CARGO) test --release --locked

# The suite repeatedly with both cores loaded (scripts/test-under-load.sh).
test-under-load: bootstrap-python
	$(WITH_LIBTORCH) export DRIFTD_PYTHON="$(DRIFTD_VENV)/bin/python" DRIFTD_CRASH_ITERATIONS=200 \
	  DRIFTD_CHAOS_ITERATIONS=40 DRIFTD_SOAK_FILES=1000 DRIFTD_SOAK_UPDATES=5 CARGO="$(CARGO)"; \
	  scripts/test-under-load.sh $${RUNS:-5}

# The long versions of tests/chaos.rs and tests/soak.rs (docs/testing.md).
chaos: bootstrap-python
	$(WITH_LIBTORCH) export DRIFTD_PYTHON="$(DRIFTD_VENV)/bin/python" \
	  DRIFTD_CHAOS_ITERATIONS=$${DRIFTD_CHAOS_ITERATIONS:-300}; \
	  $(CARGO) test --release --locked --test chaos

soak: bootstrap-python
	$(WITH_LIBTORCH) export DRIFTD_PYTHON="$(DRIFTD_VENV)/bin/python" \
	  DRIFTD_SOAK_FILES=$${DRIFTD_SOAK_FILES:-20000} DRIFTD_SOAK_UPDATES=$${DRIFTD_SOAK_UPDATES:-50}; \
	  $(CARGO) test --release --locked --test soak

bench: bootstrap-python
	$(WITH_LIBTORCH) export DRIFTD_PYTHON="$(DRIFTD_VENV)/bin/python"; \
	  $(CARGO) bench --locked --bench suite

# Fuzzing: cargo-fuzz (installed when missing) on the stable toolchain,
# built without a sanitizer into ~/.cache/driftd-ci/fuzz-target.
FUZZ_SECONDS ?= 600
fuzz: bootstrap
	scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-%: bootstrap
	scripts/fuzz.sh $(FUZZ_SECONDS) $*

lint: bootstrap
	$(CARGO) fmt --all -- --check
	$(WITH_LIBTORCH) $(CARGO) clippy --release --locked --all-targets -- -D warnings

bootstrap:
	scripts/bootstrap.sh

bootstrap-python:
	scripts/bootstrap.sh --python

clean:
	$(CARGO) clean

# ---- install / uninstall -------------------------------------------------
# PREFIX and DESTDIR as usual; DRIFTD_BIN picks the binary to install (the
# tests install the dev build). The libtorch libraries the binary loads are
# copied into $(PREFIX)/lib/driftd, which the binary's run path names first
# ($ORIGIN/../lib/driftd, see build.rs): the service never reads the build's
# venv (ProtectHome= would hide it under /root or /home).
PREFIX ?= /usr/local
DESTDIR ?=
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var
UNITDIR ?= $(SYSCONFDIR)/systemd/system
SYSUSERSDIR ?= $(SYSCONFDIR)/sysusers.d
TMPFILESDIR ?= $(SYSCONFDIR)/tmpfiles.d
DRIFTD_BIN ?= $(TARGET_DIR)/release/driftd
BINDIR = $(PREFIX)/bin
LIBDIR = $(PREFIX)/lib/driftd
DOCDIR = $(PREFIX)/share/doc/driftd
# The user guide the README links to, installed beside it as docs/.
GUIDE = $(wildcard docs/*.md)
POLICY = $(SYSCONFDIR)/driftd/policy.toml
STATEROOT = $(LOCALSTATEDIR)/lib/driftd
# Libraries the binary resolves outside the system library directories
# (libtorch_cpu, libc10, libgomp and what they pull in).
BUNDLED_LIBS = ldd "$(DRIFTD_BIN)" | awk '$$3 ~ /^\// && $$3 !~ /^\/(usr\/)?lib(64|x32)?\// && $$3 !~ /^\/lib\// { print $$3 }'
# Only on the real system (no DESTDIR) and only where systemd runs.
ON_LIVE_SYSTEM = [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]

install:
	@test -x "$(DRIFTD_BIN)" || { echo "no binary at $(DRIFTD_BIN): run 'make build' first (or set DRIFTD_BIN)"; exit 1; }
	install -d -m 0755 "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(DOCDIR)/docs" "$(DESTDIR)$(DOCDIR)/config" \
	  "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(SYSUSERSDIR)" "$(DESTDIR)$(TMPFILESDIR)" \
	  "$(DESTDIR)$(SYSCONFDIR)/driftd" "$(DESTDIR)$(STATEROOT)"
	install -m 0755 "$(DRIFTD_BIN)" "$(DESTDIR)$(BINDIR)/driftd"
	libs=$$($(BUNDLED_LIBS)); test -n "$$libs" || { echo "ldd found no libtorch libraries for $(DRIFTD_BIN)"; exit 1; }; \
	  for lib in $$libs; do install -m 0644 "$$lib" "$(DESTDIR)$(LIBDIR)/"; basename "$$lib"; done \
	  > "$(DESTDIR)$(LIBDIR)/MANIFEST"
	sed -e 's#/usr/local/bin/driftd#$(BINDIR)/driftd#g' -e 's#/usr/local/share/doc/driftd#$(DOCDIR)#g' \
	  -e 's#/etc/driftd/#$(SYSCONFDIR)/driftd/#g' systemd/driftd.service > "$(DESTDIR)$(UNITDIR)/driftd.service"
	chmod 0644 "$(DESTDIR)$(UNITDIR)/driftd.service"
	install -m 0644 systemd/driftd.sysusers "$(DESTDIR)$(SYSUSERSDIR)/driftd.conf"
	install -m 0644 systemd/driftd.tmpfiles "$(DESTDIR)$(TMPFILESDIR)/driftd.conf"
	install -m 0644 config/policy.toml "$(DESTDIR)$(DOCDIR)/policy.toml.example"
	install -m 0644 README.md "$(DESTDIR)$(DOCDIR)/README.md"
	install -m 0644 $(GUIDE) "$(DESTDIR)$(DOCDIR)/docs/"
	@# The grid docs/tune.md links to, where the link leads.
	install -m 0644 config/tune-grid.toml "$(DESTDIR)$(DOCDIR)/config/tune-grid.toml"
	@# Never overwrite a policy: an edited one stays, the new example is beside it.
	if [ -e "$(DESTDIR)$(POLICY)" ]; then \
	  cmp -s config/policy.toml "$(DESTDIR)$(POLICY)" || \
	    echo "kept your $(DESTDIR)$(POLICY); the new example is $(DESTDIR)$(DOCDIR)/policy.toml.example"; \
	else install -m 0644 config/policy.toml "$(DESTDIR)$(POLICY)"; fi
	@# The state layout. Owners come from sysusers/tmpfiles and StateDirectory=.
	install -d -m 2770 "$(DESTDIR)$(STATEROOT)/incoming"
	install -d -m 0750 "$(DESTDIR)$(STATEROOT)/models" "$(DESTDIR)$(STATEROOT)/state"
	if $(ON_LIVE_SYSTEM); then \
	  systemd-sysusers "$(SYSUSERSDIR)/driftd.conf" && \
	  systemd-tmpfiles --create "$(TMPFILESDIR)/driftd.conf" && \
	  chown driftd:driftd "$(STATEROOT)/models" "$(STATEROOT)/state" && \
	  systemctl daemon-reload; fi

uninstall:
	if $(ON_LIVE_SYSTEM); then systemctl disable --now driftd.service || true; fi
	if [ -f "$(DESTDIR)$(LIBDIR)/MANIFEST" ]; then \
	  while read -r lib; do rm -f "$(DESTDIR)$(LIBDIR)/$$lib"; done < "$(DESTDIR)$(LIBDIR)/MANIFEST"; \
	  rm -f "$(DESTDIR)$(LIBDIR)/MANIFEST"; fi
	rm -f "$(DESTDIR)$(BINDIR)/driftd" "$(DESTDIR)$(UNITDIR)/driftd.service" \
	  "$(DESTDIR)$(SYSUSERSDIR)/driftd.conf" "$(DESTDIR)$(TMPFILESDIR)/driftd.conf" \
	  "$(DESTDIR)$(DOCDIR)/policy.toml.example" "$(DESTDIR)$(DOCDIR)/README.md"
	@# Every page of the guide, also one an older checkout installed.
	rm -f "$(DESTDIR)$(DOCDIR)/docs/"*.md "$(DESTDIR)$(DOCDIR)/config/tune-grid.toml"
	@# The policy goes only if it is still the shipped example.
	if [ -e "$(DESTDIR)$(POLICY)" ]; then \
	  if cmp -s config/policy.toml "$(DESTDIR)$(POLICY)"; then rm -f "$(DESTDIR)$(POLICY)"; \
	  else echo "kept your edited $(DESTDIR)$(POLICY)"; fi; fi
	@# Empty directories go; the registry, the state and the data stay.
	-rmdir "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(DOCDIR)/docs" "$(DESTDIR)$(DOCDIR)/config" "$(DESTDIR)$(DOCDIR)" \
	  "$(DESTDIR)$(SYSCONFDIR)/driftd" \
	  "$(DESTDIR)$(STATEROOT)/incoming" "$(DESTDIR)$(STATEROOT)/models" \
	  "$(DESTDIR)$(STATEROOT)/state" 2>/dev/null
	-rmdir "$(DESTDIR)$(STATEROOT)" 2>/dev/null
	if $(ON_LIVE_SYSTEM); then systemctl daemon-reload; fi
