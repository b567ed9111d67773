#!/usr/bin/env python3
# Client side of bench/sessions.sh: holds many idle SMTP sessions open (220, EHLO, then silence),
# or times one whole transaction as a fresh client. Standard library only; one process, one loop.
"""
  smtp_hold.py hold  --port P --count N [--source 127.0.0.2] [--concurrency 200] --status FIFO
      Opens N sessions, writes "ready ok=.. failed=.. error=.." to FIFO once every attempt has ended,
      then holds them. On SIGTERM it checks each one is still open, writes "closed alive=.. shut=..
      spoke=.." to FIFO and exits.
  smtp_hold.py probe --port P [--count 1] [--size 4096]
      COUNT sessions one after another, each on a new connection: EHLO, MAIL, RCPT, DATA with SIZE
      body bytes, QUIT. Prints "greeting_ms=.. transaction_ms=.." for each (from the start of connect
      to the 220, and to the 250 after the final dot).
"""
import argparse
import asyncio
import os
import signal
import socket
import sys
import time

IP_BIND_ADDRESS_NO_PORT = 24  # Linux: bind the address now, pick the port at connect (per 4-tuple)


def final_reply(data):
    """The code of the last line if data holds a complete reply (its last line is "ddd " or "ddd"), else None."""
    if not data.endswith(b"\r\n"):
        return None
    line = data[:-2].rsplit(b"\r\n", 1)[-1]
    if len(line) >= 3 and line[:3].isdigit() and (len(line) == 3 or line[3:4] == b" "):
        return int(line[:3])
    return None


async def read_reply(loop, sock, timeout):
    data = b""
    deadline = loop.time() + timeout
    while (code := final_reply(data)) is None:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), max(0.001, deadline - loop.time()))
        if not chunk:
            raise ConnectionError(f"server closed the connection after {data[-80:]!r}")
        data += chunk
    return code, data


async def open_session(loop, args, gate):
    async with gate:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if args.source:
                sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                sock.bind((args.source, 0))
            await asyncio.wait_for(loop.sock_connect(sock, (args.host, args.port)), args.timeout)
            code, data = await read_reply(loop, sock, args.timeout)
            if code != 220:
                raise ConnectionError(f"greeting {data[:80]!r}")
            await loop.sock_sendall(sock, b"EHLO hold.bench.test\r\n")
            code, data = await read_reply(loop, sock, args.timeout)
            if code != 250:
                raise ConnectionError(f"EHLO answered {data[:80]!r}")
            return sock
        except BaseException:
            sock.close()
            raise


def state_of(sock):
    """alive (nothing to read, not closed), shut (server closed) or spoke (server sent something, e.g. 421)."""
    try:
        return "spoke" if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) else "shut"
    except BlockingIOError:
        return "alive"
    except OSError:
        return "shut"


def report(fifo, line):
    # One write of less than PIPE_BUF bytes: lines of several clients never interleave.
    fd = os.open(fifo, os.O_WRONLY)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


async def hold(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    gate = asyncio.Semaphore(args.concurrency)
    results = await asyncio.gather(*(open_session(loop, args, gate) for _ in range(args.count)), return_exceptions=True)
    socks = [r for r in results if isinstance(r, socket.socket)]
    errors = [r for r in results if not isinstance(r, socket.socket)]
    first = "" if not errors else f"{type(errors[0]).__name__}: {errors[0]}".replace("\n", " ")[:200]
    report(args.status, f"ready pid={os.getpid()} ok={len(socks)} failed={len(errors)} error={first}")
    await stop.wait()
    states = [state_of(s) for s in socks]
    report(args.status, f"closed pid={os.getpid()} alive={states.count('alive')} shut={states.count('shut')} spoke={states.count('spoke')}")
    for s in socks:
        s.close()


def probe_once(args, message):
    t0 = time.perf_counter()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(args.timeout)
        s.connect((args.host, args.port))
        buf = b""

        def expect(code, what):
            nonlocal buf
            while (got := final_reply(buf)) is None:
                chunk = s.recv(4096)
                if not chunk:
                    raise SystemExit(f"smtp_hold.py probe: server closed the connection waiting for {what}")
                buf += chunk
            if got != code:
                raise SystemExit(f"smtp_hold.py probe: {what} answered {buf.decode(errors='replace').strip()!r}")
            buf = b""

        expect(220, "greeting")
        t_greet = time.perf_counter()
        for line, code in ((b"EHLO probe.bench.test", 250), (b"MAIL FROM:<probe@bench.test>", 250),
                           (b"RCPT TO:<probe@localhost>", 250), (b"DATA", 354)):
            s.sendall(line + b"\r\n")
            expect(code, line.decode())
        s.sendall(message)
        expect(250, "end of data")
        t_done = time.perf_counter()
        s.sendall(b"QUIT\r\n")
        expect(221, "QUIT")
    print(f"greeting_ms={(t_greet - t0) * 1000:.2f} transaction_ms={(t_done - t0) * 1000:.2f}", flush=True)


def probe(args):
    body_line = b"x" * 76 + b"\r\n"
    body = (body_line * (args.size // len(body_line) + 1))[: max(0, args.size - 2)] + b"\r\n"
    message = b"From: probe@bench.test\r\nTo: probe@localhost\r\nSubject: sessions probe\r\n\r\n" + body + b".\r\n"
    for _ in range(args.count):
        probe_once(args, message)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["hold", "probe"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=1, help="sessions to open (hold) or transactions to run (probe)")
    p.add_argument("--source", default="", help="local address to connect from (spreads ephemeral ports)")
    p.add_argument("--concurrency", type=int, default=200, help="connects/greetings in flight at once")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per connect or reply")
    p.add_argument("--status", help="FIFO for the ready/closed lines (hold)")
    p.add_argument("--size", type=int, default=4096, help="body bytes (probe)")
    args = p.parse_args()
    if args.mode == "hold":
        if not args.status:
            p.error("hold needs --status")
        asyncio.run(hold(args))
    else:
        probe(args)


if __name__ == "__main__":
    sys.exit(main())
