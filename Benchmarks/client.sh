#!/usr/bin/env bash
# Is `iocptop load` the bottleneck? It and a bare C epoll client (Benchmarks/baseline/
# epoll_client.c: no verification, no latency histogram) drive the C epoll echo server in
# turn, 5 rounds interleaved, server on core 0, client on core 1. Reports medians of round
# trips/s and of the client's own CPU time per round trip (getrusage of the child).
#
#   Benchmarks/client.sh [--connections N] [--size BYTES] [--seconds S] [--rounds R]
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=100 SIZE=128 SECONDS_PER_RUN=3 ROUNDS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) CONNECTIONS=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "usage: $0 [--connections N] [--size BYTES] [--seconds S] [--rounds R]" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/iocptop-client-bench.XXXXXX)
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
swift build -c release --product iocptop >&2
gcc -O2 -o "$WORK/epoll_echo" Benchmarks/baseline/epoll_echo.c
gcc -O2 -o "$WORK/epoll_client" Benchmarks/baseline/epoll_client.c
taskset -c 0 "$WORK/epoll_echo" 5199 > /dev/null &
SERVER=$!
sleep 0.3
python3 - "$WORK/epoll_client" ".build/release/iocptop" "$CONNECTIONS" "$SIZE" "$SECONDS_PER_RUN" "$ROUNDS" <<'PY'
import json, resource, statistics, subprocess, sys
c_client, iocptop, connections, size, seconds, rounds = sys.argv[1:7]
def run(command):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["taskset", "-c", "1"] + command, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out, cpu
results = {"C epoll client": [], "iocptop load": []}
for _ in range(int(rounds)):
    out, cpu = run([c_client, "5199", connections, size, seconds])
    rate = float(out.strip()); results["C epoll client"].append((rate, cpu / (rate * float(seconds)) * 1e6))
    out, cpu = run([iocptop, "load", "--port", "5199", "--connections", connections, "--size", size, "--duration", seconds, "--json"])
    report = json.loads(out); results["iocptop load"].append((report["messages_per_s"], cpu / report["messages"] * 1e6))
print(f"| client ({connections} conns × {size} B, {rounds} rounds × {seconds} s) | round trips/s (median) | client CPU µs per round trip (median) |")
print("|---|---:|---:|")
for name, rows in results.items():
    print(f"| {name} | {statistics.median(r[0] for r in rows):,.0f} | {statistics.median(r[1] for r in rows):.2f} |")
PY
