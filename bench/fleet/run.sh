#!/usr/bin/env bash
# Fleet imaging benchmark (BENCHMARKS.md, "Fleet imaging"): N metal-agents
# in network namespaces with tc-shaped links provision one image from one
# metald, peer to peer off (the anchor) and on, in one run. Root only.
#
#   bench/fleet/run.sh                                  # N = 1,4,8,16 at 50 Mbit/s, 4 MiB chunks
#   bench/fleet/run.sh -rate 25mbit -metald "--chunk-size 1048576" -peers on
set -euo pipefail
cd "$(dirname "$0")/../.."
exec go run ./bench/fleet "$@"
