#!/usr/bin/env python3
"""Keeps a shout server busy: CONNS connections, each sending 8 lines at a time and reading
their replies back (checked), for SECONDS seconds. Loopback only.

    Examples/ShoutServer/Scripts/shout-load.py PORT [CONNS] [SECONDS]
"""
import selectors, socket, sys, time

port = int(sys.argv[1])
conns = int(sys.argv[2]) if len(sys.argv) > 2 else 32
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 20
batch = b"".join(b"hello shout line %d\n" % i for i in range(8))
reply = batch.upper()
selector = selectors.DefaultSelector()
for _ in range(conns):
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    s.sendall(batch)
    selector.register(s, selectors.EVENT_READ, bytearray())
end, answered = time.time() + seconds, 0
while time.time() < end:
    for key, _ in selector.select(timeout=0.5):
        got = key.data
        got += key.fileobj.recv(65536)
        while len(got) >= len(reply):
            assert got[:len(reply)] == reply, "wrong reply"
            del got[:len(reply)]
            answered += 8
            key.fileobj.send(batch)
print(f"{answered} lines answered")
