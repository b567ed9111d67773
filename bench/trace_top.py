#!/usr/bin/env python3
# Summarises a dotnet-trace Speedscope export (relay.sh TRACE=1). The sampled-thread-time profiler
# ends each stack with CPU_TIME (managed code running) or UNMANAGED_CODE_TIME (in native code or
# the kernel: a syscall, which may be working or blocked). Stacks that are only waiting (thread pool
# idle, semaphores) are left out. Prints the managed CPU by frame, inclusive and by the frame that
# ran it (exclusive), and the native time by the managed frame that called into it. Standard library only.
"""
  trace_top.py FILE [--until SECONDS] [--top 40] [--match TEXT]
      --until: only the first SECONDS of the trace (the busy part of a round)
      --match: inclusive times only of frames whose name contains TEXT (e.g. Sluice.)
"""
import argparse
import collections
import json

# A stack holding any of these is a thread waiting, not working.
IDLE = ("LowLevelLifoSemaphore", "WaitHandle.Wait", "Monitor.Wait", "Thread.Sleep", "WaitForSocketEvents",
        "LowLevelMonitor.Wait", "WaitOneNoCheck", "Interop+Sys.Poll", "WaitSubsystem", "SemaphoreSlim.Wait",
        "ManualResetEventSlim.Wait", "Thread.Join", "Interop+Sys.Read(", "Console", "Interop+Sys.WaitPid")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--until", type=float, default=None)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--match", default="")
    a = p.parse_args()
    doc = json.load(open(a.file))
    names = [f["name"] for f in doc["shared"]["frames"]]
    idle_frame = [any(s in n for s in IDLE) for n in names]
    incl, excl, native = collections.Counter(), collections.Counter(), collections.Counter()
    busy = idle = cpu = 0.0
    limit = a.until * 1000 if a.until else float("inf")
    for prof in doc["profiles"]:
        stack, last = [], None
        for ev in prof["events"]:
            at = min(ev["at"], limit)
            if stack and last is not None and at > last:
                span = at - last
                if any(idle_frame[f] for f in stack):
                    idle += span
                else:
                    busy += span
                    leaf = stack[-2] if len(stack) > 1 else stack[-1]
                    if names[stack[-1]] == "CPU_TIME":
                        cpu += span
                        excl[leaf] += span
                        for f in set(stack):
                            incl[f] += span
                    else:
                        native[leaf] += span
            last = at
            if ev["at"] >= limit:
                break
            if ev["type"] == "O":
                stack.append(ev["frame"])
            elif stack:
                stack.pop()
    print(f"not waiting {busy / 1000:.1f} thread-s: managed CPU {cpu / 1000:.1f}, native {(busy - cpu) / 1000:.1f}; "
          f"waiting {idle / 1000:.1f} thread-s")
    print(f"\n-- native time by calling frame, s (top {a.top}) --")
    for f, t in native.most_common(a.top):
        print(f"{t / 1000:8.2f}  {names[f][:160]}")
    print(f"\n-- managed CPU, exclusive, % of managed CPU (top {a.top}) --")
    for f, t in excl.most_common(a.top):
        print(f"{100 * t / cpu:6.2f}%  {names[f][:160]}")
    print(f"\n-- managed CPU, inclusive (top {a.top}{', frames containing ' + a.match if a.match else ''}) --")
    shown = 0
    for f, t in incl.most_common():
        if a.match and a.match not in names[f]:
            continue
        print(f"{100 * t / cpu:6.2f}%  {names[f][:160]}")
        shown += 1
        if shown == a.top:
            break


main()
