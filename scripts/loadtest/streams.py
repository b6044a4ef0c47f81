#!/usr/bin/env python3
"""Live inbox streams for the load test (scripts/loadtest/streams.sh).

    streams.py hold HOST PORT TOKEN FIRST COUNT
        Opens COUNT `GET /api/clients/client-N/events` streams, one per client
        from client-FIRST on, prints "open COUNT" once every one is open, and
        keeps reading them until SIGTERM or SIGINT; then prints how many
        ended early and how many reply events arrived.

    streams.py probe STREAM_HOST:PORT POST_HOST:PORT TOKEN CLIENT COUNT TAG
        Opens a stream for client-CLIENT on the first server, then COUNT
        times posts a reply to that client's first number (the formula of
        fill.py) to the second server's /webhooks/sms and times how long the
        reply takes to appear on the stream, from just before the request is
        sent. Prints one line: the count, how many never arrived within 5 s,
        p50 and max in milliseconds.

Standard library only: asyncio sockets, HTTP/1.1 written and read by hand
(chunked bodies included).
"""
import asyncio
import json
import signal
import sys
import time

AREAS = [201, 212, 213, 312, 415, 617, 646, 718, 917, 305]
# Streams opened at once: the server and the kernel accept them in bursts.
OPENING = 500
PROBE_WAIT = 5.0


def number(i: int) -> str:
    return f"+1{AREAS[i % 10]}{200 + (i // 10) % 800}{i // 8000:04d}"


async def open_stream(host: str, port: int, token: str, client: str):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        (
            f"GET /api/clients/{client}/events HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"{client}: {status!r}")
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
            chunked = True
    return reader, writer, chunked


async def read_body(reader: asyncio.StreamReader, chunked: bool) -> bytes:
    """The next piece of the body; b"" at its end."""
    if not chunked:
        return await reader.read(65536)
    size_line = await reader.readline()
    if not size_line:
        return b""
    size = int(size_line.split(b";")[0].strip() or b"0", 16)
    if size == 0:
        return b""
    data = await reader.readexactly(size)
    await reader.readexactly(2)
    return data


async def hold(host: str, port: int, token: str, first: int, count: int) -> None:
    stats = {"ended": 0, "events": 0}
    gate = asyncio.Semaphore(OPENING)
    opened = 0
    writers = []

    stop = asyncio.Event()

    async def one(n: int) -> None:
        nonlocal opened
        async with gate:
            try:
                reader, writer, chunked = await open_stream(host, port, token, f"client-{n}")
            except (OSError, RuntimeError) as error:
                print(f"failed: client-{n}: {error}", flush=True)
                stop.set()
                return
            writers.append(writer)
            opened += 1
            if opened == count:
                print(f"open {count}", flush=True)
        try:
            while True:
                data = await read_body(reader, chunked)
                if not data:
                    break
                stats["events"] += data.count(b"event: reply")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        stats["ended"] += 1

    tasks = [asyncio.create_task(one(first + i)) for i in range(count)]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    ended_early = stats["ended"]
    for writer in writers:
        writer.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"closed: {ended_early} ended early, {stats['events']} reply events", flush=True)


async def post_reply(host: str, port: int, message_id: str, to: str) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    body = json.dumps(
        {"messageId": message_id, "from": "+15005550006", "to": to, "body": message_id}
    ).encode()
    writer.write(
        (
            f"POST /webhooks/sms HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        + body
    )
    await writer.drain()
    status = await reader.readline()
    await reader.read()
    writer.close()
    if b" 200 " not in status:
        raise RuntimeError(f"webhook: {status!r}")


async def probe(stream_at: str, post_at: str, token: str, client: int, count: int, tag: str) -> None:
    s_host, s_port = stream_at.rsplit(":", 1)
    p_host, p_port = post_at.rsplit(":", 1)
    reader, writer, chunked = await open_stream(s_host, int(s_port), token, f"client-{client}")
    seen = b""
    while b"ibiki inbox" not in seen:
        seen += await read_body(reader, chunked)
    to = number(client * 5)
    took, missed = [], 0
    for k in range(count):
        message_id = f"probe-{tag}-{k}-{time.time_ns()}"
        needle = f'"{message_id}"'.encode()
        seen = b""
        started = time.monotonic()
        await post_reply(p_host, int(p_port), message_id, to)
        try:
            while needle not in seen:
                left = PROBE_WAIT - (time.monotonic() - started)
                seen += await asyncio.wait_for(read_body(reader, chunked), max(left, 0.001))
            took.append((time.monotonic() - started) * 1000)
        except asyncio.TimeoutError:
            missed += 1
        await asyncio.sleep(0.2)
    writer.close()
    took.sort()
    p50 = took[len(took) // 2] if took else float("nan")
    worst = took[-1] if took else float("nan")
    print(f"{count} probes, {missed} missed, p50 {p50:.1f} ms, max {worst:.1f} ms", flush=True)


def main() -> None:
    if len(sys.argv) == 7 and sys.argv[1] == "hold":
        _, _, host, port, token, first, count = sys.argv
        asyncio.run(hold(host, int(port), token, int(first), int(count)))
    elif len(sys.argv) == 8 and sys.argv[1] == "probe":
        _, _, stream_at, post_at, token, client, count, tag = sys.argv
        asyncio.run(probe(stream_at, post_at, token, int(client), int(count), tag))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
