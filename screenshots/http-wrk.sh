#!/usr/bin/env bash
# Run by regen.sh inside the screenshot's pane: iocptop's dashboard over an HTTP server
# (--protocol http) while wrk drives it — 64 connections on /plaintext, and 3 on /block?us=5000
# so that some requests block their worker. Everything it starts stops when the pane closes.
set -u
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'kill $plain $slow 2>/dev/null; wait 2>/dev/null' EXIT
(sleep 1; exec wrk -t1 -c64 -d60s "http://127.0.0.1:$port/plaintext") > /dev/null 2>&1 &
plain=$!
(sleep 1; exec wrk -t1 -c3 -d60s "http://127.0.0.1:$port/block?us=5000") > /dev/null 2>&1 &
slow=$!
"$IOCPTOP" --protocol http --port "$port" --workers 6 --concurrency 2 --refresh-ms 250
