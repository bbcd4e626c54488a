#!/usr/bin/env bash
# Lists 10,000 machines through the real API (loopback HTTP, auth, SQLite,
# JSON) with Go's benchmark harness. Figures go to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench 'ListMachinesAPI10k' -benchtime 20x -count 3 ./internal/api/
