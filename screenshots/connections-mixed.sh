#!/usr/bin/env bash
# Run by regen.sh inside the screenshot's pane: iocptop's dashboard over an HTTP server while
# mixed clients use it (screenshots/mixed-clients.py: a streamer, request/response clients at
# three rates, two whose requests block 400 ms, 50 idle keep-alives, one that never reads).
# Everything it starts stops when the pane closes, or after 60 s.
set -u
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'kill $clients 2>/dev/null; wait 2>/dev/null' EXIT
(sleep 1; exec python3 "$(dirname "$0")/mixed-clients.py" "127.0.0.1:$port" --protocol http --seconds 60) > /dev/null 2>&1 &
clients=$!
"$IOCPTOP" --protocol http --port "$port" --workers 4 --refresh-ms 500 --idle-timeout 120
