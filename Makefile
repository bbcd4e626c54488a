# metal — see README.md. `make demo` and `make test` work on a fresh Debian
# machine as root: both install what is missing first.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:/usr/sbin:/sbin
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/metal-iaas/metal/internal/version.Version=$(VERSION)
BIN := bin

.PHONY: all deps build test test-short demo bench fuzz clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/metald ./cmd/metalctl

# Every test, including the privileged ones (network namespaces, QEMU).
# METAL_REQUIRE_ALL=1 turns "cannot run here" into a failure, never a skip.
test: deps
	METAL_REQUIRE_ALL=1 $(GO) test -timeout 35m -count=1 ./...

# Unit tests only: no VMs, no namespaces, no required peers.
test-short:
	$(GO) test -short -count=1 ./...

# The stage-2 agent's boot files for metald --agent-dir bin/agent: Debian's
# kernel (scripts/fetch-kernel.sh, cached in .cache/kernel), an initramfs
# with the static agent as /init, and the Secure Boot chain for
# --uefi-boot shim: Debian's signed shim and network GRUB
# (scripts/fetch-shim.sh, versions and checksums pinned, cached in .cache/shim).
.PHONY: agent
agent: deps
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(BIN)/ ./cmd/metal-agent ./cmd/metal-initramfs
	sh scripts/fetch-kernel.sh .cache/kernel
	mkdir -p $(BIN)/agent
	cp .cache/kernel/vmlinuz $(BIN)/agent/vmlinuz
	$(BIN)/metal-initramfs --agent $(BIN)/metal-agent --kernel .cache/kernel --out $(BIN)/agent/initrd
	sh scripts/fetch-shim.sh .cache/shim
	cp .cache/shim/shimx64.efi .cache/shim/grubx64.efi $(BIN)/agent/

# End-to-end demo (root): metald + ipmi_sim BMC + QEMU VM in a private
# network namespace; provisions a bootable OVA with metalctl. docs/demo.md.
demo: build agent
	@bash scripts/demo.sh

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 ./pkg/inventory/ | tee /dev/stderr >/dev/null
	@bash bench/api/run.sh

# Run each fuzz target for FUZZTIME (default 20s).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN)
