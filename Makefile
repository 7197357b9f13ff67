# etop — the commands the README promises.
#   make test    format, lint, unit and integration tests (against real erl nodes)
#   make demo    start a demo node that looks loaded and attach etop to it
#   make bench   etop's cost on the target against OTP's etop collector
#   make soak    every view watching real nodes for a long time (about 15 min)
#   make bench-cluster  etop's own cost watching 16 nodes of 10k processes
#   make man     regenerate man/etop.1 from the command-line definition

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build release test deps demo bench bench-smoke bench-cluster soak man clean

all: build

# Erlang is what the tests attach to, and cargo builds etop: install what is
# missing, with apt-get (Debian/Ubuntu).
deps:
	@if ! command -v erl >/dev/null 2>&1; then \
	  echo "make: installing Erlang (erlang-nox) with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq erlang-nox >/dev/null; \
	fi
	@command -v erl >/dev/null || { echo "make: erl is still missing; install erlang-nox"; exit 1; }
	@command -v $(CARGO) >/dev/null || { echo "make: cargo is missing; install Rust from rustup.rs"; exit 1; }

build:
	$(CARGO) build

release:
	$(CARGO) build --release

test: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test
	$(MAKE) --no-print-directory bench-smoke

# The benchmark at 10k processes, one refresh per cell, so the script cannot
# rot between full runs; it fails when a cell could not be measured.
bench-smoke: deps build
	bench/run --smoke --etop $${CARGO_TARGET_DIR:-target}/debug/etop

demo: deps release
	demo/run

bench: deps release
	bench/run

soak: deps release
	bench/soak

bench-cluster: deps release
	bench/cluster

man:
	ETOP_UPDATE_MAN=1 $(CARGO) test --test it man_page_is_up_to_date

clean:
	$(CARGO) clean
