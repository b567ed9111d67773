#!/usr/bin/env python3
# Client side of bench/local.sh and bench/outbound.sh: sends N messages over S concurrent SMTP sessions,
# recipient k going to u(k mod M)@DOMAIN, so M mailboxes share the load evenly (with --domains D, to
# u(k mod M)@d(k mod D + 1).DOMAIN, so D domains do). Uses PIPELINING (RFC 2920):
# MAIL, RCPT and DATA in one write, then the body: two round trips a message. Standard library only.
"""
  local_inject.py --port P --count N --sessions S --mailboxes M --domain D [--domains 1] [--size 4096]
      Exits 0 when every message got 250 after its final dot; prints the first refusal and exits 1 otherwise.
"""
import argparse
import asyncio
import sys


async def reply(reader):
    """One whole reply: its code and last line."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return int(line[:3]), line.decode(errors="replace").rstrip()


async def session(args, counter, body):
    reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    try:
        await reply(reader)
        writer.write(b"EHLO bench.client.test\r\n")
        await reply(reader)
        while True:
            k = next(counter, None)
            if k is None:
                break
            domain = args.domain if args.domains == 1 else f"d{k % args.domains + 1}.{args.domain}"
            rcpt = f"u{k % args.mailboxes}@{domain}"
            writer.write(f"MAIL FROM:<sender@client.bench.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
            for expected in (250, 250, 354):
                code, text = await reply(reader)
                if code != expected:
                    raise RuntimeError(f"to {rcpt}: {text}")
            writer.write(f"Subject: bench {k}\r\nTo: <{rcpt}>\r\n\r\n".encode() + body + b".\r\n")
            code, text = await reply(reader)
            if code != 250:
                raise RuntimeError(f"to {rcpt}: {text}")
        writer.write(b"QUIT\r\n")
        await reply(reader)
    finally:
        writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--mailboxes", type=int, required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--domains", type=int, default=1)
    p.add_argument("--size", type=int, default=4096)
    args = p.parse_args()
    line = b"x" * 70 + b"\r\n"
    body = (line * (args.size // len(line) + 1))[: args.size // len(line) * len(line)]
    counter = iter(range(args.count))
    results = await asyncio.gather(*(session(args, counter, body) for _ in range(args.sessions)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        print(f"local_inject.py: {len(failed)} sessions failed, first: {failed[0]}", file=sys.stderr)
        sys.exit(1)


asyncio.run(main())
