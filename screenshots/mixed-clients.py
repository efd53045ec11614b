#!/usr/bin/env python3
"""Mixed clients for the connections view: a streamer, request/response clients, clients that
block their handler (HTTP /block), idle ones, and one that sends without ever reading.

    screenshots/mixed-clients.py HOST:PORT [--protocol echo|http] [--seconds 30] [--idle 50]

Stops by itself after --seconds (loopback only).
"""
import argparse
import socket
import threading
import time


def connect(address):
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host.strip("[]"), int(port)), timeout=5)


def streamer(address, protocol, stop):
    """Moves as many bytes as it can: 64 KiB echoed, or POST /echo of 256 KiB, back to back."""
    s = connect(address)
    if protocol == "http":
        body = b"s" * 262144
        request = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    else:
        request = b"e" * 65536
    while not stop.is_set():
        s.sendall(request)
        want = len(request) if protocol != "http" else len(body)
        got = 0
        while got < want:
            chunk = s.recv(1 << 20)
            if not chunk:
                return
            got += len(chunk)
        if protocol == "http":
            # the response head came with the body; drain what is left of it, if any
            s.settimeout(0.001)
            try:
                while s.recv(1 << 20):
                    pass
            except (socket.timeout, BlockingIOError):
                pass
            s.settimeout(5)
    s.close()


def requester(address, protocol, path, pause, stop):
    """One request at a time (keep-alive), `pause` seconds apart."""
    s = connect(address)
    request = (b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode()) if protocol == "http" else b"r" * 128
    while not stop.is_set():
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return
            data += chunk
            if protocol != "http" and len(data) >= len(request):
                break
            if protocol == "http" and b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
                if length and len(rest) >= length[0]:
                    break
        if pause:
            stop.wait(pause)
    s.close()


def never_reader(address, protocol, stop):
    """Sends and never reads: the server pauses it and holds its buffers."""
    s = connect(address)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n" * 64 if protocol == "http" else b"n" * 65536
    s.setblocking(False)
    while not stop.is_set():
        try:
            s.send(request)
        except BlockingIOError:
            stop.wait(0.05)
    s.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("--protocol", default="echo", choices=["echo", "http"])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--idle", type=int, default=50)
    args = parser.parse_args()
    stop = threading.Event()
    workers = [threading.Thread(target=streamer, args=(args.address, args.protocol, stop), daemon=True)]
    for pause in (0.001, 0.01, 0.1):
        workers.append(threading.Thread(target=requester, args=(args.address, args.protocol, "/plaintext", pause, stop), daemon=True))
    if args.protocol == "http":
        for _ in range(2):
            workers.append(threading.Thread(target=requester, args=(args.address, "http", "/block?us=400000", 0, stop), daemon=True))
    workers.append(threading.Thread(target=never_reader, args=(args.address, args.protocol, stop), daemon=True))
    idle = [connect(args.address) for _ in range(args.idle)]
    if args.protocol == "http":
        for s in idle:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    for worker in workers:
        worker.start()
    time.sleep(args.seconds)
    stop.set()
    for s in idle:
        s.close()


if __name__ == "__main__":
    main()
