# Slotway: make demo | make test | make build | make bench | make lint
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/slotway/slotway/proxy.Version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
# Integration tests start real redis-server processes; every package is
# tested under the race detector, in one go test so that the packages'
# waits overlap on two cores.
TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: all build demo test test-unit fuzz lint bench deps clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/slotway ./cmd/slotway

# deps installs what the demo, the tests and the benchmark (strace for its
# syscall count) need on a fresh Debian machine.
# The deploy tests (internal/deploytest) need shellcheck, systemd-analyze
# and vagrant; vagrant without its recommends, which would pull in libvirt,
# QEMU and a kernel only to run `vagrant validate`. They also run
# `docker stack config` (Docker CLI 23 or later), which no Debian 12
# package provides (docker.io is 20.10): install docker-ce-cli from
# Docker's own apt repository for that test.
deps:
	@pkgs=""; \
	command -v redis-server >/dev/null || pkgs="$$pkgs redis-server"; \
	command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null || pkgs="$$pkgs redis-tools"; \
	command -v ip >/dev/null || pkgs="$$pkgs iproute2"; \
	command -v nft >/dev/null || pkgs="$$pkgs nftables"; \
	command -v chromium >/dev/null || pkgs="$$pkgs chromium chromium-driver"; \
	command -v shellcheck >/dev/null || pkgs="$$pkgs shellcheck"; \
	command -v strace >/dev/null || pkgs="$$pkgs strace"; \
	command -v systemd-analyze >/dev/null || pkgs="$$pkgs systemd"; \
	command -v vagrant >/dev/null || norec="$$norec vagrant"; \
	if [ -n "$$pkgs$$norec" ]; then \
		echo "installing$$pkgs$$norec ..."; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq; \
		if [ -n "$$pkgs" ]; then DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$pkgs >/dev/null; fi; \
		if [ -n "$$norec" ]; then DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$norec >/dev/null; fi; \
		$$SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true; \
	fi

demo: deps build
	./bin/slotway demo

test: deps
	$(GO) test $(TEST_FLAGS) -race ./...
	$(MAKE) fuzz

# A short run of every fuzz target (seed corpus plus a fixed number of
# inputs each). A count, not a duration: with a duration, a worker still
# busy when it ends makes the run fail with "context deadline exceeded"
# (FuzzReader did once in CI on a loaded machine).
FUZZTIME ?= 20000x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME) ./proxy/
	$(GO) test -run '^$$' -fuzz '^FuzzScanReply$$' -fuzztime $(FUZZTIME) ./proxy/
	$(GO) test -run '^$$' -fuzz '^FuzzSlot$$' -fuzztime $(FUZZTIME) ./internal/hashslot/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/fileconfig/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/clusternodes/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

bench: deps build
	bench/run.sh

clean:
	rm -rf bin
