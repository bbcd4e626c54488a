#!/usr/bin/env bash
# make demo: runs metald on loopback with its embedded SQLite inventory in
# ./demo-work, enrols an example machine, and shows how to reach it.
# Safe to run twice: it reuses the data dir and token. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$PWD/demo-work
mkdir -p "$work"
port=${METAL_DEMO_PORT:-8080}
addr=127.0.0.1:$port

if [ ! -s "$work/token" ]; then
  bin/metald token create --data-dir "$work/data" --name demo 2>/dev/null | tail -n1 > "$work/token"
fi
token=$(cat "$work/token")

bin/metald serve --data-dir "$work/data" --http "$addr" --dhcp-mode off 2>"$work/metald.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; echo; echo "metald stopped; data kept in $work/data"' EXIT INT TERM
for _ in $(seq 100); do curl -fs "http://$addr/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://$addr/healthz" >/dev/null || { cat "$work/metald.log"; exit 1; }

export METALCTL_SERVER=http://$addr METALCTL_TOKEN=$token
bin/metalctl machine show demo-01 >/dev/null 2>&1 ||
  bin/metalctl machine add demo-01 --mac 52:54:00:de:00:01 --ip 10.99.0.11 --tag rack=demo >/dev/null
bin/metalctl machine list
cat <<MSG

metald is running on http://$addr (log: $work/metald.log).
In another shell:

  export METALCTL_SERVER=http://$addr
  export METALCTL_TOKEN=$token
  bin/metalctl machine list -o yaml
  bin/metalctl events --follow
  curl -s http://$addr/metrics | grep metald_machines
  curl -s http://$addr/api/v1/openapi.json | head

Press Ctrl-C to stop.
MSG
wait $pid
