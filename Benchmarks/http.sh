#!/usr/bin/env bash
# HTTP/1.1 servers compared in one run, GET /plaintext → "Hello, World!":
#   iocptop serve --protocol http (io_uring; --with-epoll adds epoll), nginx (Debian's, one
#   worker, `return 200`), h2o (Debian's, one thread, a static file) and Hummingbird 2 (its
#   router on one event loop, built from the package mirror in $HB_DIR, default
#   /tmp/iocptop-hummingbird; none of its code is committed).
#
#   Benchmarks/http.sh [--rounds N] [--seconds S] [--connections C] [--only NAME,NAME]
#                      [--with-epoll] [--skip-hummingbird] [--loadgen] [--idle-memory]
#
# Every server runs pinned to core 0 (one core), wrk -t1 to core 1, C connections (default 100).
# Two workloads: plaintext (one request at a time per connection) and plaintext pipelined 16
# deep (wrk with a Lua script). Servers are interleaved round by round; the table gives medians
# over the rounds. Server CPU per request comes from the server's /proc/PID/stat (utime +
# stime; nginx: its worker) around the measured run.
#   --loadgen       also `iocptop load --protocol http` against iocptop, same connections and
#                   depth: its rate beside wrk's (the load generator must not be the bottleneck).
#   --idle-memory   RSS per idle keep-alive connection of iocptop: 10 000 connections that made
#                   one request each, then sit idle.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=3 SECONDS_PER_RUN=8 CONNECTIONS=100 ONLY= WITH_EPOLL=0 SKIP_HB=0 LOADGEN=0 IDLE_MEMORY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --with-epoll) WITH_EPOLL=1; shift ;;
    --skip-hummingbird) SKIP_HB=1; shift ;;
    --loadgen) LOADGEN=1; shift ;;
    --idle-memory) IDLE_MEMORY=1; shift ;;
    *) echo "usage: $0 [--rounds N] [--seconds S] [--connections C] [--only NAME,NAME] [--with-epoll] [--skip-hummingbird] [--loadgen] [--idle-memory]" >&2; exit 2 ;;
  esac
done
for tool in wrk nginx h2o; do
  command -v $tool > /dev/null || { echo "$tool is needed: apt-get install wrk nginx-light h2o" >&2; exit 2; }
done
WORK=$(mktemp -d /tmp/iocptop-http-bench.XXXXXX)
chmod 755 "$WORK"
SERVER_PID= MEASURED_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

echo "building: iocptop (release)" >&2
swift build -c release --product iocptop >&2
IOCPTOP="$ROOT/.build/release/iocptop"

HB_SERVER=
if [ "$SKIP_HB" = 0 ]; then
  # A fifteen-line Hummingbird 2 server, written and built outside the repository.
  HB_DIR=${HB_DIR:-/tmp/iocptop-hummingbird}
  mkdir -p "$HB_DIR/Sources/HelloHummingbird"
  cat > "$HB_DIR/Package.swift" <<'SWIFT'
// swift-tools-version:6.0
import PackageDescription
let package = Package(
    name: "hello-hummingbird",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [.executableTarget(name: "HelloHummingbird", dependencies: [
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOPosix", package: "swift-nio"),
    ])]
)
SWIFT
  cat > "$HB_DIR/Sources/HelloHummingbird/main.swift" <<'SWIFT'
import Hummingbird
import Logging
import NIOPosix

// GET /plaintext → "Hello, World!" on one event loop: Hummingbird 2 as most users would write it.
let port = Int(CommandLine.arguments.dropFirst().first ?? "5404") ?? 5404
let router = Router()
router.get("plaintext") { _, _ in "Hello, World!" }
var logger = Logger(label: "hello")
logger.logLevel = .error
let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: 1)),
    logger: logger
)
try await app.runService()
SWIFT
  if (cd "$HB_DIR" && swift build -c release >&2); then
    HB_SERVER="$HB_DIR/.build/release/HelloHummingbird"
  else
    echo "Hummingbird: cannot be built here, skipped" >&2
  fi
fi

# nginx: one worker, no logs, keep-alive without a request limit.
cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
error_log /dev/null crit;
pid $WORK/nginx.pid;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:PORT backlog=4096;
    location / { default_type text/plain; return 200 "Hello, World!"; }
  }
}
NGINX
# h2o: one thread, the same 13 bytes from a static file.
printf 'Hello, World!' > "$WORK/plaintext"
chmod 644 "$WORK/plaintext"
cat > "$WORK/h2o.conf" <<H2O
num-threads: 1
user: nobody
error-log: /dev/null
http1-request-timeout: 60
hosts:
  default:
    listen:
      host: 127.0.0.1
      port: PORT
    paths:
      /plaintext:
        file.file: $WORK/plaintext
H2O
cat > "$WORK/pipeline.lua" <<'LUA'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/plaintext") end
  req = table.concat(r)
end
request = function() return req end
LUA

PORT=5480
start_server() {
  PORT=$((PORT + 1))
  case "$1" in
    iocptop-io_uring) taskset -c 0 "$IOCPTOP" serve --protocol http --port $PORT --backend io_uring --workers 2 --concurrency 1 --quiet > "$WORK/server.log" 2>&1 & ;;
    iocptop-epoll) taskset -c 0 "$IOCPTOP" serve --protocol http --port $PORT --backend epoll --workers 2 --concurrency 1 --quiet > "$WORK/server.log" 2>&1 & ;;
    nginx) sed "s/PORT/$PORT/" "$WORK/nginx.conf" > "$WORK/nginx-run.conf"
           taskset -c 0 nginx -c "$WORK/nginx-run.conf" -p "$WORK" > "$WORK/server.log" 2>&1 & ;;
    h2o) sed "s/PORT/$PORT/" "$WORK/h2o.conf" > "$WORK/h2o-run.conf"
         taskset -c 0 h2o -c "$WORK/h2o-run.conf" > "$WORK/server.log" 2>&1 & ;;
    hummingbird) taskset -c 0 "$HB_SERVER" $PORT > "$WORK/server.log" 2>&1 & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if curl -sf -o /dev/null "http://127.0.0.1:$PORT/plaintext" 2>/dev/null; then
      MEASURED_PID=$SERVER_PID
      # nginx serves from its worker: measure that process.
      [ "$1" = nginx ] && MEASURED_PID=$(pgrep -P "$SERVER_PID" | head -1)
      return 0
    fi
    sleep 0.1
  done
  echo "$1 did not start: $(cat "$WORK/server.log")" >&2
  return 1
}
stop_server() { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

SERVERS="iocptop-io_uring"
[ "$WITH_EPOLL" = 1 ] && SERVERS="$SERVERS iocptop-epoll"
SERVERS="$SERVERS nginx h2o"
[ -n "$HB_SERVER" ] && SERVERS="$SERVERS hummingbird"
if [ -n "$ONLY" ]; then
  chosen=
  for server in $SERVERS; do case ",$ONLY," in *",$server,"*) chosen="$chosen $server" ;; esac; done
  SERVERS=$chosen
fi
TICK=$(getconf CLK_TCK)
RESULTS="$WORK/results.tsv"
# wrk's "Requests/sec" and total count; nothing but 2xx and no socket errors, or the run fails.
run_wrk() {
  local out
  out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" "$@" 2>&1)
  if grep -qE "Non-2xx|Socket errors" <<< "$out"; then echo "failed"; echo "$out" >&2; return; fi
  awk '/requests in/ {n=$1} /Requests\/sec/ {r=$2} /Latency/ {l=$2} END {print r, n, l}' <<< "$out"
}
for round in $(seq 1 "$ROUNDS"); do
  for workload in plaintext pipelined-16; do
    script=(); [ "$workload" = pipelined-16 ] && script=(-s "$WORK/pipeline.lua")
    for server in $SERVERS; do
      start_server "$server"
      taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d1s "${script[@]}" "http://127.0.0.1:$PORT/plaintext" > /dev/null 2>&1 || true
      before=$(cpu_ticks "$MEASURED_PID")
      read -r rate count latency <<< "$(run_wrk "${script[@]}" "http://127.0.0.1:$PORT/plaintext")"
      after=$(cpu_ticks "$MEASURED_PID")
      if [ "$rate" != failed ]; then
        cpu_us=$(python3 -c "print(f'{($after - $before) / $TICK * 1e6 / $count:.2f}')")
        printf '%s\t%s\t%s\twrk\t%s\t%s\t%s\n' "$round" "$workload" "$server" "$rate" "$cpu_us" "$latency" >> "$RESULTS"
      fi
      if [ "$LOADGEN" = 1 ] && [ "${server%%-*}" = iocptop ]; then
        depth=1; [ "$workload" = pipelined-16 ] && depth=16
        json=$(taskset -c 1 "$IOCPTOP" load --protocol http --port $PORT --connections "$CONNECTIONS" --pipeline $depth --duration "$SECONDS_PER_RUN" --json 2>/dev/null || true)
        rate=$(python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(f\"{r['messages_per_s']:.0f}\" if not r['errors'] and not r['mismatches'] else 'failed')" "$json" 2>/dev/null || echo failed)
        [ "$rate" != failed ] && printf '%s\t%s\t%s\tloadgen\t%s\t0\t-\n' "$round" "$workload" "$server" "$rate" >> "$RESULTS"
      fi
      stop_server
      tail -1 "$RESULTS" >&2
    done
  done
done

[ -f "$RESULTS" ] && python3 - "$RESULTS" <<'PY'
import statistics, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    round_, workload, server, client, rate, cpu, latency = line.rstrip("\n").split("\t")
    rows[(workload, server, client)].append((float(rate), float(cpu)))
print("| workload | server | client | requests/s | server CPU µs/request | vs nginx req/s | vs nginx CPU | vs Hummingbird req/s |")
print("|---|---|---|---:|---:|---:|---:|---:|")
for (workload, server, client), values in rows.items():
    rate = statistics.median(v[0] for v in values)
    cpu = statistics.median(v[1] for v in values)
    nginx = rows.get((workload, "nginx", "wrk")); hb = rows.get((workload, "hummingbird", "wrk"))
    n_rate = statistics.median(v[0] for v in nginx) if nginx else 0
    n_cpu = statistics.median(v[1] for v in nginx) if nginx else 0
    h_rate = statistics.median(v[0] for v in hb) if hb else 0
    cells = [f"{rate / n_rate:.2f}×" if n_rate else "–",
             f"{cpu / n_cpu:.2f}×" if n_cpu and client == "wrk" else "–",
             f"{rate / h_rate:.2f}×" if h_rate else "–"]
    cpu_cell = f"{cpu:.2f}" if client == "wrk" else "–"
    print(f"| {workload} | {server} | {client} | {rate:,.0f} | {cpu_cell} | " + " | ".join(cells) + " |")
PY

if [ "$IDLE_MEMORY" = 1 ]; then
  echo
  echo "| server | RSS idle KiB | RSS with 10 000 idle keep-alive connections KiB | per connection |"
  echo "|---|---:|---:|---:|"
  for server in iocptop-io_uring nginx; do
    start_server "$server"
    idle=$(rss_kib "$MEASURED_PID")
    # 10 000 connections, one request each, then held open without a word.
    taskset -c 1 python3 - "$PORT" 10000 > "$WORK/idle.log" 2>&1 <<'PY' &
import resource, socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 100)), hard))
held = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n")
    got = b""
    while not got.endswith(b"Hello, World!"):
        chunk = s.recv(4096)
        if not chunk: raise SystemExit("closed early")
        got += chunk
    held.append(s)
print("held", flush=True)
time.sleep(12)
PY
    HOLD_PID=$!
    for _ in $(seq 1 1200); do grep -q held "$WORK/idle.log" && break; kill -0 $HOLD_PID 2>/dev/null || break; sleep 0.1; done
    if grep -q held "$WORK/idle.log"; then
      sleep 3
      loaded=$(rss_kib "$MEASURED_PID")
      echo "| $server | $idle | $loaded | $(python3 -c "print(f'{($loaded - $idle) * 1024 / 10000:.0f} B')") |"
    else
      echo "| $server | $idle | failed: $(tail -1 "$WORK/idle.log") | – |"
    fi
    kill $HOLD_PID 2>/dev/null; wait $HOLD_PID 2>/dev/null || true
    stop_server
  done
fi
