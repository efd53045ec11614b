#!/usr/bin/env bash
# Auto mode against blocking HTTP requests: wrk drives 200 connections of GET /block?us=5000
# (each request blocks its worker 5 ms inside the port's blocking scope) at an HTTP server
# started with --auto and the default pool; in 5-second windows it prints the pool size (from
# `iocptop list --json`), wrk's requests/s and its latency p99, until p99 falls below 100 ms
# (or 120 s pass).
#
#   Benchmarks/http-block-auto.sh [--connections C] [--block-us N] [--backend B]
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=200 BLOCK_US=5000 BACKEND=io_uring
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) CONNECTIONS=$2; shift 2 ;;
    --block-us) BLOCK_US=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    *) echo "usage: $0 [--connections C] [--block-us N] [--backend B]" >&2; exit 2 ;;
  esac
done
command -v wrk > /dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
swift build -c release --product iocptop >&2
IOCPTOP="$PWD/.build/release/iocptop"
WORK=$(mktemp -d /tmp/iocptop-block-auto.XXXXXX)
export XDG_RUNTIME_DIR=$WORK
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
taskset -c 0 "$IOCPTOP" serve --protocol http --port 0 --auto --backend "$BACKEND" --refresh-ms 250 > "$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do grep -q "http on" "$WORK/serve.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/serve.log" | head -1)
workers() { "$IOCPTOP" list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["workers"])'; }
echo "| elapsed s | workers at the window's start | requests/s | p50 ms | p99 ms |"
echo "|---:|---:|---:|---:|---:|"
start=$(date +%s.%N)
while :; do
  elapsed=$(python3 -c "print(f'{$(date +%s.%N) - $start:.0f}')")
  before=$(workers)
  out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d5s --latency "http://127.0.0.1:$PORT/block?us=$BLOCK_US" 2>&1)
  read -r rate p50 p99 <<< "$(python3 - "$out" <<'PY'
import re, sys
out = sys.argv[1]
def ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
rate = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
p50 = ms(re.search(r"\s50%\s+(\S+)", out).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", out).group(1))
print(f"{float(rate):.0f} {p50:.1f} {p99:.1f}")
PY
)"
  echo "| $elapsed | $before | $rate | $p50 | $p99 |"
  if python3 -c "import sys; sys.exit(0 if $p99 < 100 else 1)"; then
    echo "p99 below 100 ms after ${elapsed} s (+ this 5 s window), $(workers) workers"
    break
  fi
  if python3 -c "import sys; sys.exit(0 if $elapsed > 120 else 1)"; then echo "p99 still ≥ 100 ms after 120 s"; break; fi
done
