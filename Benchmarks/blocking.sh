#!/usr/bin/env bash
# Handlers that block: do the frames tell the truth, and does a large pool help the client?
#
#   Benchmarks/blocking.sh [--iterations N] [--iocptop PATH] [--before PATH] [--backends "io_uring epoll"]
#
# Runs `iocptop --batch --json --workers W --concurrency 2 --block-us 5000 --load 64` for N
# frames (500 ms each) with W = 8 and W = 32, on each backend, and reads what the frames say
# against what the built-in client measured in the same frames:
#   depth     median queue depth
#   wait+svc  pool queue-wait p99 + service p99, median over frames
#   rtt p99   the client's round-trip p99, median over frames
#   ratio     frames (after the first) where wait+svc is within 2x of rtt p99 (0.5 ≤ x ≤ 2)
#   oldest    frames whose queue_oldest_us is over 10 ms (absent: "-")
#   msg/s     the client's messages per second, median
# and the last frame's warning. `--before PATH` runs another iocptop binary first, in the same
# run, labelled "before"; `--iocptop PATH` replaces the one built from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
ITERATIONS=12 IOCPTOP="" BEFORE="" BACKENDS="io_uring epoll"
while [ $# -gt 0 ]; do
  case "$1" in
    --iterations) ITERATIONS=$2; shift 2 ;;
    --iocptop) IOCPTOP=$2; shift 2 ;;
    --before) BEFORE=$2; shift 2 ;;
    --backends) BACKENDS=$2; shift 2 ;;
    *) echo "usage: $0 [--iterations N] [--iocptop PATH] [--before PATH] [--backends LIST]" >&2; exit 2 ;;
  esac
done
if [ -z "$IOCPTOP" ]; then
  swift build -c release --product iocptop >&2
  IOCPTOP="$PWD/.build/release/iocptop"
fi
WORK=$(mktemp -d /tmp/iocptop-blocking-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

printf '%-7s %-9s %4s %6s %10s %10s %7s %7s %7s  %s\n' build backend W depth "wait+svc" "rtt p99" ratio oldest "msg/s" warning
for label in before after; do
  binary=$IOCPTOP
  if [ "$label" = before ]; then [ -n "$BEFORE" ] || continue; binary=$BEFORE; fi
  for backend in $BACKENDS; do
    for workers in 8 32; do
      timeout $((ITERATIONS + 30)) "$binary" --batch --json --port 0 --backend "$backend" --workers "$workers" \
        --concurrency 2 --block-us 5000 --load 64 --refresh-ms 500 --iterations "$ITERATIONS" \
        > "$WORK/frames.jsonl" 2> "$WORK/stderr.log" || { cat "$WORK/stderr.log" >&2; exit 1; }
      python3 - "$WORK/frames.jsonl" "$label" "$backend" "$workers" <<'PY'
import json, statistics, sys
frames = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
frames = [f for f in frames[1:] if f.get("load", {}).get("round_trip_p99_us")]
if not frames:
    sys.exit(f"{sys.argv[2]} {sys.argv[3]} {sys.argv[4]}: no frame with the client's round trips")
def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")
sums = [(f["queue_wait_p99_us"] or 0) + (f["service_p99_us"] or 0) for f in frames]
rtts = [f["load"]["round_trip_p99_us"] for f in frames]
within = sum(1 for s, r in zip(sums, rtts) if 0.5 <= s / r <= 2)
oldest = "-" if "queue_oldest_us" not in frames[-1] else \
    f"{sum(1 for f in frames if f['queue_oldest_us'] > 10000)}/{len(frames)}"
warning = next((w["message"] for w in frames[-1]["warnings"] if w["kind"] == "workers_blocked"), "")
print(f"{sys.argv[2]:<7} {sys.argv[3]:<9} {sys.argv[4]:>4} {med(f['queue_depth'] for f in frames):>6.0f}"
      f" {med(sums) / 1000:>8.1f}ms {med(rtts) / 1000:>8.1f}ms {within:>3}/{len(frames):<3} {oldest:>7}"
      f" {med(f['load']['messages_per_s'] for f in frames):>7.0f}  {warning}")
PY
    done
  done
done
