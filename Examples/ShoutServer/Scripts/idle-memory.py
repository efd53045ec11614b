#!/usr/bin/env python3
"""What an idle connection costs a server on the core: opens N connections to PORT, each
sending one line and reading its reply (so its input and output buffers have been used), then
reports the growth of process PID's RSS per connection. Loopback only.

    Examples/ShoutServer/Scripts/idle-memory.py PID PORT N
"""
import socket, sys, time
pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"): return int(line.split()[1])
before = rss()
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"x" * 100 + b"\n")
    got = b""
    while len(got) < 101: got += s.recv(200)
    socks.append(s)
time.sleep(3)
after = rss()
print(f"{n} idle connections after one line each: RSS {before} KiB -> {after} KiB, {(after-before)*1024/n:.0f} bytes per connection")
