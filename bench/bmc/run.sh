#!/usr/bin/env bash
# BMC fan-out benchmark: pkg/bmc's Manager against N emulated Redfish BMCs
# (test/bmcsim, one 127.0.0.1 listener each, one process), PowerStatus
# and PowerOn for all of them, over HTTPS and plain HTTP. The anchor is the
# same code with one operation at a time (Tinkerbell's BMC controller
# default), run in the same invocation. Prints a markdown table.
#
#   bench/bmc/run.sh              # 200 BMCs, best of 3
#   N=500 RUNS=1 bench/bmc/run.sh
#
# Needs: go. Loopback only. Not part of `make test`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
ulimit -n 8192 2>/dev/null || true
go run ./bench/bmc/fanout -n "${N:-200}" -runs "${RUNS:-3}" -concurrency "${CONCURRENCY:-64}"
