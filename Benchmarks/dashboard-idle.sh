#!/usr/bin/env bash
# CPU used by an idle iocptop dashboard: 64 workers, default 500 ms refresh, no clients, in a
# 120×40 tmux pane; process CPU (utime + stime from /proc) over 30 s.
#
#   Benchmarks/dashboard-idle.sh [--workers N] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=64 SECONDS_TO_MEASURE=30
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) WORKERS=$2; shift 2 ;;
    --seconds) SECONDS_TO_MEASURE=$2; shift 2 ;;
    *) echo "usage: $0 [--workers N] [--seconds S]" >&2; exit 2 ;;
  esac
done
swift build -c release --product iocptop >&2
BINARY=$PWD/.build/release/iocptop
SOCKET=iocptop-idle-$$
trap 'tmux -L $SOCKET kill-server 2>/dev/null || true' EXIT
tmux -L "$SOCKET" -f /dev/null new-session -d -x 120 -y 40 \
  "env LANG=C.UTF-8 TERM=tmux-256color $BINARY --port 0 --workers $WORKERS"
sleep 3
PID=$(pgrep -f "^$BINARY --port 0 --workers $WORKERS" | head -1)
T0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
sleep "$SECONDS_TO_MEASURE"
T1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
python3 -c "print(f'idle dashboard, $WORKERS workers, 500 ms refresh: {($T1 - $T0) / $(getconf CLK_TCK) / $SECONDS_TO_MEASURE * 100:.2f} % of one core over $SECONDS_TO_MEASURE s')"
tmux -L "$SOCKET" send-keys q
