#!/usr/bin/env bash
# Run by regen.sh inside the screenshot's pane: Examples/ShoutServer under its load client,
# and `iocptop attach` watching it (the header's Handler line shows the server's own metric).
# Everything it starts stops when the pane closes.
set -u
dir=$(mktemp -d /tmp/iocptop-shout-XXXXXX)
trap 'kill $server $load 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
export XDG_RUNTIME_DIR=$dir
"$SHOUT" 0 > "$dir/start" &
server=$!
for _ in $(seq 100); do grep -q "shout on" "$dir/start" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/start")
python3 "$LOAD" "$port" 48 30 > /dev/null &
load=$!
"$IOCPTOP" attach
