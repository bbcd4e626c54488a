#!/usr/bin/env bash
# Installs what metal's build, tests and demo need on a Debian machine:
# the Debian packages listed in scripts/apt-packages.txt that are missing,
# and the Go modules. Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

want=$(sed -e 's/#.*//' -e '/^\s*$/d' scripts/apt-packages.txt | sort -u)
missing=()
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Test peers (tftpd-hpa, kea, lldpd, radvd) must not start as system
  # services: the tests run their own copies inside network namespaces.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
  echo "deps: Go is not installed (want $(sed -n 's/^go //p' go.mod) at /usr/local/go)" >&2
  exit 1
fi
go mod download
echo "deps: ok ($(go version | cut -d' ' -f3), ${#missing[@]} packages installed)"
