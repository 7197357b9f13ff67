# etop — the commands the README promises.
#   make test    format, lint, unit and integration tests (against real erl nodes)
#   make demo    start a demo node that looks loaded and attach etop to it
#   make bench   etop's cost on the target against OTP's etop collector (25 min)
#   make bench-quick  the same at 100k processes only, writing nothing (3 min)
#   make soak    every view watching real nodes for a long time (about 15 min)
#   make bench-cluster  etop's own cost watching 16 nodes of 10k processes
#   make man     regenerate man/etop.1 from the command-line definition
#   make static  one static binary for any x86_64 Linux host (musl), stripped
#   make install the binary, the man page and shell completions under
#                $(DESTDIR)$(PREFIX) (PREFIX=/usr/local)

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

# The static build: musl libc linked in, so the binary needs no file of the
# host it runs on (an Alpine container, an old glibc, an empty chroot).
STATIC_TARGET := x86_64-unknown-linux-musl
STATIC_BIN := $(TARGET_DIR)/$(STATIC_TARGET)/release/etop

PREFIX ?= /usr/local
DESTDIR ?=
# The binary `make install` installs; the release build unless given, e.g.
# `make static install ETOP_BIN=target/x86_64-unknown-linux-musl/release/etop`.
ETOP_BIN ?=
INSTALL_BIN := $(or $(ETOP_BIN),$(TARGET_DIR)/release/etop)
BINDIR := $(DESTDIR)$(PREFIX)/bin
MAN1DIR := $(DESTDIR)$(PREFIX)/share/man/man1
BASHDIR := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSHDIR := $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISHDIR := $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d

.PHONY: all build release static install uninstall test deps demo bench bench-quick bench-smoke bench-cluster soak man clean

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
	@# TLS-distribution tests need OTP's ssl application (erlang-nox pulls it
	@# in; an Erlang installed as erlang-base alone lacks it).
	@if ! erl -noshell -eval 'case code:lib_dir(ssl) of {error, _} -> halt(1); _ -> halt(0) end.' >/dev/null 2>&1; then \
	  echo "make: installing OTP's ssl application (erlang-ssl) with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq erlang-ssl >/dev/null; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "make: cargo is missing; install Rust from rustup.rs"; exit 1; }

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# The static binary first: a test runs it in an empty root directory.
test: deps static
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test
	$(MAKE) --no-print-directory bench-smoke

# rustls's ring provider has C inside: the musl target needs musl's C
# compiler (musl-tools) as well as the Rust target.
static:
	@command -v rustup >/dev/null || { echo "make: rustup is missing; install Rust from rustup.rs"; exit 1; }
	@rustup target list --installed | grep -qx '$(STATIC_TARGET)' || rustup target add $(STATIC_TARGET)
	@if ! command -v musl-gcc >/dev/null 2>&1; then \
	  echo "make: installing musl-tools (musl's C compiler) with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq musl-tools >/dev/null; \
	fi
	@command -v musl-gcc >/dev/null || { echo "make: musl-gcc is still missing; install musl-tools"; exit 1; }
	CC_x86_64_unknown_linux_musl=musl-gcc $(CARGO) build --release --target $(STATIC_TARGET)
	@echo "make: $(STATIC_BIN) is static and stripped; copy it to the host and run 'etop --version'"

install: $(if $(ETOP_BIN),,release)
	install -d '$(BINDIR)' '$(MAN1DIR)' '$(BASHDIR)' '$(ZSHDIR)' '$(FISHDIR)'
	install -m 0755 '$(INSTALL_BIN)' '$(BINDIR)/etop'
	install -m 0644 man/etop.1 '$(MAN1DIR)/etop.1'
	'$(INSTALL_BIN)' completions bash > '$(BASHDIR)/etop'
	'$(INSTALL_BIN)' completions zsh > '$(ZSHDIR)/_etop'
	'$(INSTALL_BIN)' completions fish > '$(FISHDIR)/etop.fish'
	chmod 0644 '$(BASHDIR)/etop' '$(ZSHDIR)/_etop' '$(FISHDIR)/etop.fish'

uninstall:
	rm -f '$(BINDIR)/etop' '$(MAN1DIR)/etop.1' '$(BASHDIR)/etop' '$(ZSHDIR)/_etop' '$(FISHDIR)/etop.fish'

# The benchmark at 10k processes, quiet and under churn, one refresh per
# cell, so the script cannot rot between full runs; it fails when a cell
# could not be measured.
bench-smoke: deps build
	bench/run --smoke --etop $${CARGO_TARGET_DIR:-target}/debug/etop

demo: deps release
	demo/run

bench: deps release
	bench/run

bench-quick: deps release
	bench/run --quick

soak: deps release
	bench/soak

bench-cluster: deps release
	bench/cluster

man:
	ETOP_UPDATE_MAN=1 $(CARGO) test --test it man_page_is_up_to_date

clean:
	$(CARGO) clean
