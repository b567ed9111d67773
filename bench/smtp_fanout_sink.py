#!/usr/bin/env python3
# Receiving side of bench/outbound.sh: one SMTP listener per destination address (127.1.x.y, one per
# MX host), each accepting every message but holding the reply to its final dot HOLD seconds, so
# each delivery keeps its session that long. Counts sessions open at once, overall and per
# destination address, and the peaks. Standard library only; asyncio, so no thread per session.
"""
  smtp_fanout_sink.py --port P --addresses FILE [--hold 5] [--status FIFO]
      FILE: one IPv4 address per line to listen on (all at port P). "ready" is written to the status
      FIFO once every listener is up. On SIGTERM prints one line and exits:
      sessions=TOTAL messages=M peak=PEAK peak_per_destination=MAX busiest=ADDR errors=E
"""
import argparse
import asyncio
import signal
import sys


class Counts:
    def __init__(self):
        self.now = 0
        self.peak = 0
        self.total = 0
        self.messages = 0
        self.errors = 0
        self.per = {}        # destination address -> sessions open now
        self.per_peak = {}   # destination address -> most at once

    def enter(self, addr):
        self.now += 1
        self.total += 1
        self.peak = max(self.peak, self.now)
        n = self.per.get(addr, 0) + 1
        self.per[addr] = n
        if n > self.per_peak.get(addr, 0):
            self.per_peak[addr] = n

    def leave(self, addr):
        self.now -= 1
        self.per[addr] -= 1


async def converse(reader, writer, counts, hold):
    writer.write(b"220 sink.bench.test ESMTP\r\n")
    await writer.drain()
    while True:
        line = await reader.readline()
        if not line:
            return
        verb = line[:4].upper()
        if verb == b"EHLO":
            writer.write(b"250-sink.bench.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        elif verb == b"DATA":
            writer.write(b"354 go ahead\r\n")
            await writer.drain()
            while True:
                data = await reader.readline()
                if not data:
                    return
                if data == b".\r\n":
                    break
            await asyncio.sleep(hold)
            counts.messages += 1
            writer.write(b"250 2.0.0 queued\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 2.0.0 bye\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"250 2.0.0 ok\r\n")
        await writer.drain()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--addresses", required=True)
    p.add_argument("--hold", type=float, default=5.0)
    p.add_argument("--status")
    args = p.parse_args()
    counts = Counts()

    async def session(reader, writer):
        addr = writer.get_extra_info("sockname")[0]
        counts.enter(addr)
        try:
            await converse(reader, writer, counts, args.hold)
        except (ConnectionError, asyncio.IncompleteReadError):
            counts.errors += 1
        finally:
            counts.leave(addr)
            writer.close()

    with open(args.addresses) as f:
        addresses = [a.strip() for a in f if a.strip()]
    servers = [await asyncio.start_server(session, a, args.port, backlog=4096, reuse_address=True) for a in addresses]
    if args.status:
        with open(args.status, "w") as s:
            s.write("ready\n")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for s in servers:
        s.close()
    busiest = max(counts.per_peak, key=counts.per_peak.get, default="-")
    print(f"sessions={counts.total} messages={counts.messages} peak={counts.peak} "
          f"peak_per_destination={counts.per_peak.get(busiest, 0)} busiest={busiest} errors={counts.errors}", flush=True)
    sys.stdout.flush()


asyncio.run(main())
