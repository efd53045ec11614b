#!/usr/bin/env bash
# Regenerates the dashboard screenshots in this folder from the release build, each a real
# capture of iocptop running in a tmux pane (../shared/tools/tui-screenshot).
#
#   screenshots/regen.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SHOT=${TUI_SCREENSHOT:-../shared/tools/tui-screenshot}
swift build -c release --product iocptop >&2
IOCPTOP=$PWD/.build/release/iocptop

# Under the built-in load: 64 connections, 6 workers, concurrency 2.
"$SHOT" --cols 120 --rows 32 --wait 12 --out screenshots/load.png -- \
  "$IOCPTOP" --port 0 --workers 6 --load 64 --refresh-ms 250

# The help overlay.
"$SHOT" --cols 120 --rows 32 --keys "sleep:3 h" --wait 1 --out screenshots/help.png -- \
  "$IOCPTOP" --port 0 --workers 6 --load 64 --refresh-ms 250

# Mid-drain: 5 ms of simulated work per completion makes the cancellations of 400
# connections (800 completions, 2 at a time) take about two seconds, so the drain can be watched.
"$SHOT" --cols 120 --rows 32 --keys "sleep:4 d sleep:0.6" --wait 0 --out screenshots/drain.png -- \
  "$IOCPTOP" --port 0 --workers 6 --load 400 --work-us 5000 --refresh-ms 100

# The detail pane of a worker (Enter), under load with some work per completion.
"$SHOT" --cols 120 --rows 32 --keys "sleep:4 Enter" --wait 1 --out screenshots/detail.png -- \
  "$IOCPTOP" --port 0 --workers 4 --concurrency 1 --work-us 200 --load 64 --refresh-ms 250

# Every worker blocked while packets wait: the header shows the queue and its oldest packet's
# age, the warning quotes them and says to press +.
"$SHOT" --cols 120 --rows 32 --wait 6 --out screenshots/blocked.png -- \
  "$IOCPTOP" --port 0 --workers 8 --concurrency 2 --block-us 5000 --load 64 --refresh-ms 250

# Auto mode at work: every completion blocks 20 ms; the pool grows from 2 workers and each
# decision is on the status line and in the event log.
"$SHOT" --cols 120 --rows 32 --wait 8 --out screenshots/auto.png -- \
  "$IOCPTOP" --port 0 --workers 2 --concurrency 2 --block-us 20000 --load 64 --auto --refresh-ms 250

# A narrow terminal in monochrome, sorted by completions per second.
"$SHOT" --cols 80 --rows 24 --keys "sleep:3 s s s s" --wait 1 --out screenshots/mono-80x24.png -- \
  "$IOCPTOP" --port 0 --workers 4 --load 32 --no-color --refresh-ms 250

# A recording replayed: 5 s of blocked workers recorded with --batch, then the replay paused
# a few frames before the end, at ×2.
RECORDING=$(mktemp -u /tmp/iocptop-shot-XXXXXX.rec)
trap 'rm -f "$RECORDING"' EXIT
"$IOCPTOP" --batch --port 0 --workers 3 --concurrency 2 --block-us 20000 --load 64 --iterations 20 \
  --refresh-ms 250 --record "$RECORDING" > /dev/null 2>&1
"$SHOT" --cols 120 --rows 32 --keys "sleep:1 End Left Left Left Left Left Left Left ]" --wait 1 --out screenshots/replay.png -- \
  "$IOCPTOP" replay "$RECORDING"

# A server of its own on the core (Examples/ShoutServer) under load, with iocptop attached:
# the header names its protocol and shows its own metric (Handler lines …/s).
swift build -c release --package-path Examples/ShoutServer >&2
"$SHOT" --cols 120 --rows 32 --wait 6 --out screenshots/shout.png -- \
  env SHOUT="$PWD/Examples/ShoutServer/.build/release/shout-server" \
  LOAD="$PWD/Examples/ShoutServer/Scripts/shout-load.py" IOCPTOP="$IOCPTOP" screenshots/attach-shout.sh

# HTTP/1.1 on the port (--protocol http) under wrk: the header's Handler line shows requests/s
# and latency p50/p99; /block requests block their workers now and then.
"$SHOT" --cols 120 --rows 32 --wait 7 --out screenshots/http.png -- \
  env IOCPTOP="$IOCPTOP" screenshots/http-wrk.sh

# The connections view (Tab) under mixed clients: a streamer first by bytes/s, request/response
# clients, two blocked in /block, 50 idle keep-alives and one client that never reads (paused).
"$SHOT" --cols 132 --rows 36 --keys "sleep:7 Tab" --wait 2 --out screenshots/connections.png -- \
  env IOCPTOP="$IOCPTOP" screenshots/connections-mixed.sh

# A connection's detail pane (Enter on the busiest): its figures and its bytes/s history.
"$SHOT" --cols 132 --rows 36 --keys "sleep:9 Tab Enter" --wait 2 --out screenshots/connection-detail.png -- \
  env IOCPTOP="$IOCPTOP" screenshots/connections-mixed.sh
