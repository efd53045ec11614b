#!/usr/bin/env bash
# What attached viewers cost the engine: echo throughput of `iocptop serve` with 0 viewers and
# with 4 `iocptop attach --batch --json` viewers, the engine sampling every 100 ms, interleaved
# round by round in one run.
#
#   Benchmarks/attach.sh [--rounds N] [--seconds S] [--viewers V]
#
# The server runs pinned to core 0; the load generator (100 connections × 128 B) and the
# viewers to core 1, as a second terminal on the same machine would. The table gives medians.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=5 SECONDS_PER_RUN=5 VIEWERS=4
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --viewers) VIEWERS=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--seconds S] [--viewers V]" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/iocptop-attach-bench.XXXXXX)
export XDG_RUNTIME_DIR=$WORK
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

swift build -c release --product iocptop >&2
IOCPTOP="$ROOT/.build/release/iocptop"
PORT=5310
taskset -c 0 "$IOCPTOP" serve --port $PORT --refresh-ms 100 --quiet > "$WORK/server.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
taskset -c 1 "$IOCPTOP" load --port $PORT --connections 100 --duration 2 > /dev/null 2>&1 || true

measure() {
  taskset -c 1 "$IOCPTOP" load --port $PORT --connections 100 --size 128 --duration "$SECONDS_PER_RUN" --json 2>/dev/null \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["messages_per_s"]))'
}

: > "$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
  echo "0 $(measure)" >> "$WORK/results"
  viewers=()
  for _ in $(seq 1 "$VIEWERS"); do
    taskset -c 1 "$IOCPTOP" attach "$SERVER" --batch --json > "$WORK/viewer.$round.${#viewers[@]}" 2>/dev/null &
    viewers+=($!)
  done
  PIDS+=("${viewers[@]}")
  echo "$VIEWERS $(measure)" >> "$WORK/results"
  kill "${viewers[@]}" 2>/dev/null; wait "${viewers[@]}" 2>/dev/null || true
  frames=$(cat "$WORK"/viewer.$round.* | wc -l)
  echo "round $round: $(tail -2 "$WORK/results" | tr '\n' ' ') (viewers printed $frames frames)" >&2
done
python3 - "$WORK/results" "$VIEWERS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    viewers, rate = line.split()
    rows.setdefault(viewers, []).append(float(rate))
base, with_viewers = statistics.median(rows["0"]), statistics.median(rows[sys.argv[2]])
print(f"| viewers | round trips/s (median of {len(rows['0'])}) | vs none |")
print("|---:|---:|---:|")
print(f"| 0 | {base:,.0f} | 1.000 |")
print(f"| {sys.argv[2]} | {with_viewers:,.0f} | {with_viewers / base:.3f} |")
PY
