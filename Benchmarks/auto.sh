#!/usr/bin/env bash
# Auto mode's recovery: how long after blocking starts the pool has grown enough to bring
# completions/s back to 90 % of the value it settles at.
#
#   Benchmarks/auto.sh [--before S] [--after S] [--block-us U] [--load N] [--iocptop PATH]
#
# `iocptop serve --auto --workers 2 --concurrency 2 --load N` runs with a 250 ms period; after
# `--before` seconds the script sends `block-us U` on the engine's control socket (as another
# terminal's key would) and reads frames for `--after` seconds through `iocptop attach --batch
# --json`. The settled value is the mean of the last 5 s. The same run without --auto gives
# the throughput a fixed pool of 2 keeps under the same blocking, for comparison.
# `--iocptop PATH` measures another build (an earlier revision, say) instead of this checkout's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BEFORE=4 AFTER=60 BLOCK=20000 LOAD=64 IOCPTOP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --before) BEFORE=$2; shift 2 ;;
    --after) AFTER=$2; shift 2 ;;
    --block-us) BLOCK=$2; shift 2 ;;
    --load) LOAD=$2; shift 2 ;;
    --iocptop) IOCPTOP=$2; shift 2 ;;
    *) echo "usage: $0 [--before S] [--after S] [--block-us U] [--load N] [--iocptop PATH]" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/iocptop-auto-bench.XXXXXX)
export XDG_RUNTIME_DIR=$WORK
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

if [ -z "$IOCPTOP" ]; then
  swift build -c release --product iocptop >&2
  IOCPTOP="$ROOT/.build/release/iocptop"
fi

run() {  # $1: extra serve flags; prints "seconds-after-block completions/s workers" lines
  local flags=$1
  "$IOCPTOP" serve --port 0 --workers 2 --concurrency 2 --load "$LOAD" --refresh-ms 250 --quiet $flags \
    > "$WORK/serve.log" 2>&1 &
  local server=$!
  PIDS+=("$server")
  for _ in $(seq 100); do ls "$WORK"/iocptop/"$server"-*.sock > /dev/null 2>&1 && break; sleep 0.05; done
  local socket
  socket=$(ls "$WORK"/iocptop/"$server"-*.sock)
  timeout $((BEFORE + AFTER + 5)) "$IOCPTOP" attach "$server" --batch --json > "$WORK/frames.jsonl" 2>/dev/null &
  local viewer=$!
  sleep "$BEFORE"
  python3 - "$socket" "$BLOCK" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(f"iocptop/1 block-us {sys.argv[2]}\n".encode())
print(s.recv(256).decode().strip(), file=sys.stderr)
print(time.clock_gettime_ns(time.CLOCK_MONOTONIC), file=open(sys.argv[1] + ".t", "w"))
PY
  sleep "$AFTER"
  kill "$viewer" 2>/dev/null || true
  wait "$viewer" 2>/dev/null || true
  kill -INT "$server"
  wait "$server" 2>/dev/null || true
  python3 - "$WORK/frames.jsonl" "$socket.t" "$BEFORE" <<'PY'
import json, sys
frames = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
switched = None
for f in frames:
    if f.get("block_us", 0) > 0:
        switched = f["uptime_s"] - f["interval_s"]
        break
after = [f for f in frames if switched is not None and f["uptime_s"] > switched]
settled = after[-20:]
final = sum(f["completions_per_s"] for f in settled) / len(settled)
# The first frame after the drop (below 90 % of the settled value) that is back at 90 % or more.
drop = next((i for i, f in enumerate(after) if f["completions_per_s"] < 0.9 * final), None)
recovered = None if drop is None else next(
    (f["uptime_s"] - switched for f in after[drop:] if f["completions_per_s"] >= 0.9 * final), None)
before = [f["completions_per_s"] for f in frames if switched is not None and f["uptime_s"] <= switched][-4:]
line = (f"before blocking {sum(before)/len(before):,.0f} completions/s; settled {final:,.0f} completions/s"
        f" with {settled[-1]['workers_live']} workers")
if recovered is not None:
    line += f"; back at 90 % of it {recovered:.1f} s after blocking started"
print(line)
PY
}

echo "== --auto"
run "--auto"
echo "== fixed pool (no --auto)"
run ""
