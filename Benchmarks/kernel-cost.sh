#!/usr/bin/env bash
# What one echoed message costs an echo server in the kernel's currency: server CPU,
# inter-processor interrupts, context switches — per message, over one ping-pong run.
#
#   Benchmarks/kernel-cost.sh [--server io_uring|epoll|c] [--connections N] [--size BYTES]
#                             [--seconds S] [--rounds N] [--iocptop PATH]
#
# The server runs pinned to core 0, `iocptop load` to core 1 (as in echo.sh). IPIs are the
# rescheduling and function-call interrupts of all CPUs (/proc/interrupts RES + CAL) during the
# run; context switches are the server threads' voluntary and involuntary ones
# (/proc/PID/task/*/status). --iocptop runs another build (e.g. the one `echo.sh --compare REV`
# leaves in /tmp/iocptop-compare/<commit>-<toolchain>/.build/release/iocptop) against the same
# client.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER=io_uring CONNECTIONS=1000 SIZE=128 SECONDS_PER_RUN=3 ROUNDS=1 SERVER_BIN=
while [ $# -gt 0 ]; do
  case "$1" in
    --server) SERVER=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --iocptop) SERVER_BIN=$2; shift 2 ;;
    *) echo "usage: $0 [--server io_uring|epoll|c] [--connections N] [--size BYTES] [--seconds S] [--rounds N] [--iocptop PATH]" >&2; exit 2 ;;
  esac
done
case "$SERVER" in io_uring|epoll|c) ;; *) echo "--server: io_uring, epoll or c" >&2; exit 2 ;; esac
WORK=$(mktemp -d /tmp/iocptop-kernel-cost.XXXXXX)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

swift build -c release --product iocptop >&2
LOAD="$PWD/.build/release/iocptop"
SERVER_BIN=${SERVER_BIN:-$LOAD}
[ "$SERVER" = c ] && gcc -O2 -o "$WORK/epoll_echo" Benchmarks/baseline/epoll_echo.c

ipis() { awk '/^ *(RES|CAL):/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }' /proc/interrupts; }
switches() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { print v + 0, n + 0 }'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "| server | connections × size | round trips/s | server CPU µs/msg | IPIs/msg | voluntary cs/msg | involuntary cs/msg |"
echo "|---|---|---:|---:|---:|---:|---:|"
PORT=5310
for _ in $(seq 1 "$ROUNDS"); do
  PORT=$((PORT + 1))
  case "$SERVER" in
    c) taskset -c 0 "$WORK/epoll_echo" $PORT > "$WORK/server.log" 2>&1 & ;;
    *) taskset -c 0 "$SERVER_BIN" serve --port $PORT --backend "$SERVER" --quiet > "$WORK/server.log" 2>&1 & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
  taskset -c 1 "$LOAD" load --port $PORT --connections "$CONNECTIONS" --size "$SIZE" --duration 1 > /dev/null 2>&1 || true
  read -r v0 n0 < <(switches "$SERVER_PID"); t0=$(cpu_ticks "$SERVER_PID"); i0=$(ipis)
  json=$(taskset -c 1 "$LOAD" load --port $PORT --connections "$CONNECTIONS" --size "$SIZE" --duration "$SECONDS_PER_RUN" --json 2>/dev/null || true)
  read -r v1 n1 < <(switches "$SERVER_PID"); t1=$(cpu_ticks "$SERVER_PID"); i1=$(ipis)
  kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
  python3 - "$json" "$SERVER" "$CONNECTIONS × $SIZE B" $((t1 - t0)) "$(getconf CLK_TCK)" $((i1 - i0)) $((v1 - v0)) $((n1 - n0)) <<'PY'
import json, sys
raw, server, shape, ticks, tick, ipis, vol, invol = sys.argv[1:9]
try:
    r = json.loads(raw)
except ValueError:
    print(f"| {server} | {shape} | failed | – | – | – | – |"); sys.exit()
n = r["messages"] or 1
cpu_us = int(ticks) / int(tick) * 1e6 / n
print(f"| {server} | {shape} | {r['messages_per_s']:,.0f} | {cpu_us:.2f} | {int(ipis) / n:.3f} | {int(vol) / n:.3f} | {int(invol) / n:.3f} |")
PY
done
