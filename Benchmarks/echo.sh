#!/usr/bin/env bash
# Echo servers compared in one run: iocptop (io_uring, epoll), a plain single-threaded C epoll
# server (Benchmarks/baseline/epoll_echo.c) and SwiftNIO's NIOEchoServer.
#
#   Benchmarks/echo.sh [--rounds N] [--seconds S] [--skip-nio] [--skip-memory] [--only-memory]
#                      [--workloads NAME,NAME]   (e.g. stream-10x64k,pingpong-100x4k)
#                      [--with-multishot]   (also iocptop on io_uring with --provided-buffers 2048:
#                                            one multishot receive per connection)
#                      [--compare REV]      (also iocptop on io_uring as built from git revision
#                                            REV: an engine change measured against its parent
#                                            in the same run, e.g. --compare HEAD~1; built in
#                                            $COMPARE_DIR, default /tmp/iocptop-compare)
#                      [--skip-epoll]       (leave out iocptop on epoll)
#
# Every server runs pinned to core 0, the load generator (`iocptop load`, release build) to
# core 1. Servers are interleaved round by round; the table gives medians over the rounds.
# Server CPU per message comes from the server's /proc/PID/stat (utime + stime) around the
# measured run. Memory per idle connection is (RSS with 10 000 idle connections − RSS with
# none) / 10 000. NIO is built from the swift-nio package (offline mirror) in a scratch folder
# outside the repository ($NIO_DIR, default /tmp/iocptop-nio); none of its code is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=3 SECONDS_PER_RUN=5 SKIP_NIO=0 SKIP_MEMORY=0 ONLY_MEMORY=0 ONLY_WORKLOADS= WITH_MULTISHOT=0 COMPARE_REV= SKIP_EPOLL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --skip-nio) SKIP_NIO=1; shift ;;
    --skip-memory) SKIP_MEMORY=1; shift ;;
    --only-memory) ONLY_MEMORY=1; shift ;;
    --workloads) ONLY_WORKLOADS=$2; shift 2 ;;
    --with-multishot) WITH_MULTISHOT=1; shift ;;
    --compare) COMPARE_REV=$2; shift 2 ;;
    --skip-epoll) SKIP_EPOLL=1; shift ;;
    *) echo "usage: $0 [--rounds N] [--seconds S] [--skip-nio] [--skip-memory] [--only-memory] [--workloads NAME,NAME] [--with-multishot] [--compare REV] [--skip-epoll]" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/iocptop-echo-bench.XXXXXX)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

echo "building: iocptop (release), epoll_echo (gcc -O2)" >&2
swift build -c release --product iocptop >&2
IOCPTOP="$ROOT/.build/release/iocptop"
gcc -O2 -o "$WORK/epoll_echo" Benchmarks/baseline/epoll_echo.c

COMPARE_BIN= COMPARE_NAME=
if [ -n "$COMPARE_REV" ]; then
  # The other revision is exported (git archive, no worktree) and built outside the repository,
  # once per commit and toolchain: $COMPARE_DIR/<commit>-<toolchain>, with this checkout's
  # resolved package versions, so both builds use the same dependencies.
  sha=$(git rev-parse --verify "$COMPARE_REV^{commit}")
  toolchain=$(swift --version 2>/dev/null | head -1 | cksum | cut -d' ' -f1)
  dir=${COMPARE_DIR:-/tmp/iocptop-compare}/$sha-$toolchain
  if [ ! -x "$dir/.build/release/iocptop" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    git archive "$sha" | tar -x -C "$dir"
    [ -f Package.resolved ] && cp Package.resolved "$dir/"
    (cd "$dir" && swift build -c release --product iocptop >&2)
  fi
  COMPARE_BIN="$dir/.build/release/iocptop"
  COMPARE_NAME="iocptop-io_uring@$(git rev-parse --short "$sha")"
fi

NIO_SERVER=
if [ "$SKIP_NIO" = 0 ]; then
  NIO_DIR=${NIO_DIR:-/tmp/iocptop-nio}
  if [ ! -d "$NIO_DIR" ]; then
    git clone -q --depth 1 --branch 2.101.3 https://github.com/apple/swift-nio "$NIO_DIR" 2>/dev/null || true
  fi
  if [ -d "$NIO_DIR" ] && (cd "$NIO_DIR" && swift build -c release --product NIOEchoServer >&2); then
    NIO_SERVER="$NIO_DIR/.build/release/NIOEchoServer"
  else
    echo "NIOEchoServer: cannot be built here (no swift-nio 2.101.3 in reach), skipped" >&2
  fi
fi

PORT=5210
# start_server NAME: starts it pinned to core 0 on $PORT, sets SERVER_PID, waits until it accepts.
start_server() {
  PORT=$((PORT + 1))
  case "$1" in
    iocptop-io_uring) taskset -c 0 "$IOCPTOP" serve --port $PORT --backend io_uring --quiet > "$WORK/server.log" 2>&1 & ;;
    iocptop-io_uring-multishot) taskset -c 0 "$IOCPTOP" serve --port $PORT --backend io_uring --provided-buffers 2048 --quiet > "$WORK/server.log" 2>&1 & ;;
    iocptop-epoll) taskset -c 0 "$IOCPTOP" serve --port $PORT --backend epoll --quiet > "$WORK/server.log" 2>&1 & ;;
    iocptop-io_uring@*) taskset -c 0 "$COMPARE_BIN" serve --port $PORT --backend io_uring --quiet > "$WORK/server.log" 2>&1 & ;;
    c-epoll) taskset -c 0 "$WORK/epoll_echo" $PORT > "$WORK/server.log" 2>&1 & ;;
    nio) taskset -c 0 "$NIO_SERVER" 127.0.0.1 $PORT > "$WORK/server.log" 2>&1 & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "$1 did not start: $(cat "$WORK/server.log")" >&2
  return 1
}
stop_server() { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

SERVERS="iocptop-io_uring iocptop-epoll c-epoll"
[ "$WITH_MULTISHOT" = 1 ] && SERVERS="iocptop-io_uring iocptop-io_uring-multishot iocptop-epoll c-epoll"
[ -n "$COMPARE_NAME" ] && SERVERS="iocptop-io_uring $COMPARE_NAME ${SERVERS#iocptop-io_uring }"
[ "$SKIP_EPOLL" = 1 ] && SERVERS=${SERVERS/iocptop-epoll /}
[ -n "$NIO_SERVER" ] && SERVERS="$SERVERS nio"
# name connections size pipeline
# Streaming: `iocptop load --mode stream` writes 64 KiB chunks continuously, at most 1 MiB
# unechoed per connection, and counts connections that go a second without an echoed byte.
WORKLOADS="pingpong-1x128:1:128:1 pingpong-100x128:100:128:1 pingpong-1000x128:1000:128:1 pingpong-100x4k:100:4096:1 stream-10x64k:10:65536:stream"
if [ -n "$ONLY_WORKLOADS" ]; then
  chosen=
  for workload in $WORKLOADS; do
    case ",$ONLY_WORKLOADS," in *",${workload%%:*},"*) chosen="$chosen $workload" ;; esac
  done
  [ -n "$chosen" ] || { echo "no such workload: $ONLY_WORKLOADS" >&2; exit 2; }
  WORKLOADS=$chosen
fi
TICK=$(getconf CLK_TCK)
RESULTS="$WORK/results.tsv"
[ "$ONLY_MEMORY" = 1 ] && ROUNDS=0
for round in $(seq 1 "$ROUNDS"); do
  for workload in $WORKLOADS; do
    IFS=: read -r name connections size pipeline <<< "$workload"
    if [ "$pipeline" = stream ]; then shape=(--mode stream --window 1048576); else shape=(--pipeline "$pipeline"); fi
    for server in $SERVERS; do
      start_server "$server"
      # Warm up (connections, pools, caches), then measure.
      taskset -c 1 "$IOCPTOP" load --port $PORT --connections "$connections" --size "$size" "${shape[@]}" --duration 1 --json > /dev/null 2>&1 || true
      before=$(cpu_ticks "$SERVER_PID")
      json=$(taskset -c 1 "$IOCPTOP" load --port $PORT --connections "$connections" --size "$size" "${shape[@]}" --duration "$SECONDS_PER_RUN" --json 2>/dev/null || true)
      after=$(cpu_ticks "$SERVER_PID")
      stop_server
      python3 - "$round" "$name" "$server" "$((after - before))" "$TICK" "$json" >> "$RESULTS" <<'PY'
import json, sys
round_, name, server, ticks, tick, raw = sys.argv[1:7]
try:
    r = json.loads(raw)
except ValueError:
    print(f"{round_}\t{name}\t{server}\tfailed\t0\t0\t0\t0\t0\t0\t0"); sys.exit()
cpu_us = int(ticks) / int(tick) * 1e6
per_message = cpu_us / r["messages"] if r["messages"] else 0
print(f"{round_}\t{name}\t{server}\tok\t{r['messages_per_s']:.0f}\t{r['mb_per_s']:.1f}\t{r['latency_us']['p50']:.0f}\t{r['latency_us']['p99']:.0f}\t{per_message:.2f}\t{r['mismatches']}\t{r.get('stalled', 0)}")
PY
      tail -1 "$RESULTS" >&2
    done
  done
done

[ "$ONLY_MEMORY" = 0 ] && python3 - "$RESULTS" <<'PY'
import statistics, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    round_, name, server, status, *values = line.rstrip("\n").split("\t")
    if status == "ok":
        rows[(name, server)].append([float(v) for v in values])
names = list(dict.fromkeys(k[0] for k in rows))
servers = list(dict.fromkeys(k[1] for k in rows))
print("| workload | server | round trips/s | MB/s | p50 µs | p99 µs | server CPU µs/msg | vs C rt/s | vs NIO rt/s | stalled (max) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in names:
    med = {s: [statistics.median(col) for col in zip(*rows[(name, s)])] for s in servers if rows[(name, s)]}
    for s, m in med.items():
        c = med.get("c-epoll"); n = med.get("nio")
        vs_c = f"{m[0] / c[0]:.2f}×" if c and c[0] else "–"
        vs_n = f"{m[0] / n[0]:.2f}×" if n and n[0] else "–"
        stalled = max(int(row[6]) for row in rows[(name, s)])
        print(f"| {name} | {s} | {m[0]:,.0f} | {m[1]:.1f} | {m[2]:.0f} | {m[3]:.0f} | {m[4]:.2f} | {vs_c} | {vs_n} | {stalled} |")
PY

if [ "$SKIP_MEMORY" = 0 ]; then
  echo
  echo "| server | RSS idle KiB | RSS with 10 000 idle connections KiB | per connection |"
  echo "|---|---:|---:|---:|"
  for server in $SERVERS; do
    start_server "$server"
    taskset -c 1 "$IOCPTOP" load --port $PORT --connections 100 --duration 1 > /dev/null 2>&1 || true
    idle=$(rss_kib "$SERVER_PID")
    # 10 000 connections that send one message each over 12 s: idle, and held open meanwhile.
    taskset -c 1 "$IOCPTOP" load --port $PORT --connections 10000 --rate 500 --duration 12 --connect-timeout 20 > "$WORK/idle.log" 2>&1 &
    LOAD_PID=$!
    for _ in $(seq 1 200); do grep -q connected "$WORK/idle.log" && break; sleep 0.1; done
    sleep 2
    loaded=$(rss_kib "$SERVER_PID")
    echo "| $server | $idle | $loaded | $(python3 -c "print(f'{($loaded - $idle) * 1024 / 10000:.0f} B')") |"
    wait $LOAD_PID || true
    stop_server
  done

  # The same 10 000 connections after each has echoed 64 KiB once, then 10 s of silence: what
  # a connection keeps once its traffic has stopped.
  echo
  echo "| server | RSS idle KiB | RSS 10 s after 10 000 connections echoed 64 KiB each KiB | per connection |"
  echo "|---|---:|---:|---:|"
  for server in $SERVERS; do
    start_server "$server"
    taskset -c 1 "$IOCPTOP" load --port $PORT --connections 100 --duration 1 > /dev/null 2>&1 || true
    idle=$(rss_kib "$SERVER_PID")
    taskset -c 1 python3 - "$PORT" 10000 65536 14 > "$WORK/bulk.log" 2>&1 <<'PY' &
import os, resource, socket, sys, time
port, count, size, hold = (int(a) for a in sys.argv[1:5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 100)), hard))
payload = os.urandom(size)
held = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(payload)
    got = bytearray()
    while len(got) < size:
        chunk = s.recv(size - len(got))
        if not chunk: raise SystemExit("closed early")
        got += chunk
    if got != payload: raise SystemExit("mismatch")
    held.append(s)
print("echoed", flush=True)
time.sleep(hold)
PY
    BULK_PID=$!
    for _ in $(seq 1 1200); do grep -q echoed "$WORK/bulk.log" && break; kill -0 $BULK_PID 2>/dev/null || break; sleep 0.1; done
    if grep -q echoed "$WORK/bulk.log"; then
      sleep 10
      loaded=$(rss_kib "$SERVER_PID")
      echo "| $server | $idle | $loaded | $(python3 -c "print(f'{($loaded - $idle) * 1024 / 10000:.0f} B')") |"
    else
      echo "| $server | $idle | failed: $(tail -1 "$WORK/bulk.log") | – |"
    fi
    kill $BULK_PID 2>/dev/null; wait $BULK_PID 2>/dev/null || true
    stop_server
  done
fi
