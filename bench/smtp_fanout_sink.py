#!/usr/bin/env python3
# Receiving side of bench/outbound.sh: one SMTP listener per destination address (127.1.x.y, one per
# MX host), each accepting every message but holding the reply to its final dot HOLD seconds, so
# each delivery keeps its session that long. Counts sessions open at once, overall and per
# destination address, and the peaks. Standard library only; asyncio, so no thread per session. The
# addresses are split over WORKERS processes (each has its own open-files limit and core), which
# count overall sessions in one shared counter.
"""
  smtp_fanout_sink.py --port P --addresses FILE [--hold 5] [--workers 4] [--status FIFO]
      FILE: one IPv4 address per line to listen on (all at port P). "ready" is written to the status
      FIFO once every listener is up. On SIGTERM prints one line and exits:
      sessions=TOTAL messages=M peak=PEAK peak_per_destination=MAX busiest=ADDR errors=E
"""
import argparse
import asyncio
import multiprocessing
import signal
import sys


class Counts:
    def __init__(self, shared):
        self.shared = shared  # [now, peak] over every worker
        self.total = 0
        self.messages = 0
        self.errors = 0
        self.per = {}        # destination address -> sessions open now
        self.per_peak = {}   # destination address -> most at once

    def enter(self, addr):
        with self.shared.get_lock():
            self.shared[0] += 1
            if self.shared[0] > self.shared[1]:
                self.shared[1] = self.shared[0]
        self.total += 1
        n = self.per.get(addr, 0) + 1
        self.per[addr] = n
        if n > self.per_peak.get(addr, 0):
            self.per_peak[addr] = n

    def leave(self, addr):
        with self.shared.get_lock():
            self.shared[0] -= 1
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


async def serve(args, addresses, shared, ready, results):
    counts = Counts(shared)

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

    servers = [await asyncio.start_server(session, a, args.port, backlog=4096, reuse_address=True) for a in addresses]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    ready.release()
    await stop.wait()
    for s in servers:
        s.close()
    busiest = max(counts.per_peak, key=counts.per_peak.get, default="-")
    results.put((counts.total, counts.messages, counts.per_peak.get(busiest, 0), busiest, counts.errors))


def worker(args, addresses, shared, ready, results):
    asyncio.run(serve(args, addresses, shared, ready, results))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--addresses", required=True)
    p.add_argument("--hold", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--status")
    args = p.parse_args()
    with open(args.addresses) as f:
        addresses = [a.strip() for a in f if a.strip()]
    shared = multiprocessing.Array("l", 2)
    ready = multiprocessing.Semaphore(0)
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=worker, args=(args, addresses[k::args.workers], shared, ready, results))
               for k in range(args.workers)]
    # The workers take SIGTERM themselves; the parent waits for their results.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for w in workers:
        w.start()
    for _ in workers:
        ready.acquire()
    if args.status:
        with open(args.status, "w") as s:
            s.write("ready\n")
    signal.signal(signal.SIGTERM, lambda *_: [w.terminate() for w in workers if w.is_alive()] and None)
    got = [results.get() for _ in workers]
    for w in workers:
        w.join()
    total, messages, per_dest, busiest, errors = (sum(g[0] for g in got), sum(g[1] for g in got),
                                                  *max((g[2], g[3]) for g in got), sum(g[4] for g in got))
    print(f"sessions={total} messages={messages} peak={shared[1]} "
          f"peak_per_destination={per_dest} busiest={busiest} errors={errors}", flush=True)


if __name__ == "__main__":
    main()
