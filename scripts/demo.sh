#!/usr/bin/env bash
# make demo: provisions a QEMU VM end to end on this machine (as root):
# a private network namespace "metal-demo" with the real metald (full
# DHCP on its bridge), an ipmi_sim BMC wired to a QEMU VM with a blank
# disk, the netbooted agent, and a stock Debian 12 cloud image (OVA) that metalctl
# uploads and provisions with `metalctl provision --wait`. Then the
# installed Debian's console is shown, configured by its own cloud-init. Cleans up on exit or Ctrl-C;
# safe to run twice. METAL_DEMO_KEEP=1 keeps it running until Ctrl-C.
# See docs/demo.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (network namespaces, tap devices): sudo make demo" >&2
  exit 1
fi
mkdir -p bin
CGO_ENABLED=0 go build -o bin/metal-demo ./cmd/metal-demo
args=(--dir demo-work)
[ "${METAL_DEMO_KEEP:-0}" = 1 ] && args+=(--keep)
exec bin/metal-demo "${args[@]}" "$@"
