"""What one round trip to a second Python process costs, by what the caller did before it.

A child-owner cell (`owner: process` / `other-user`) pays at least one round trip to its
helper, and in library order the test process does a self-owned cell's work between two
of them. This times one request that does a helper's typical work (decode a batch, make
a socket, set an option, bind it on loopback, close it, list its descriptors, encode the
answer) in a forked process on the caller's CPU, after each of:

  none   nothing: requests back to back
  busy   1 ms of a tight loop (the CPU stays busy, little memory is touched)
  sleep  1 ms asleep (the CPU goes idle)
  touch  a walk over 20,000 dicts (about what a cell's Python work touches)

and, for scale, the same work done in this process. Run interleaved, medians of
--rounds rounds of --requests requests each:

    /work/nsrun python bench/bench_switch.py
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time

REQUEST = (
    json.dumps(
        {
            "op": "batch",
            "socket": "b",
            "requests": [
                {"op": "socket", "family": "inet", "type": "stream"},
                {"op": "setsockopt", "option": "SO_REUSEADDR"},
                {"op": "bind", "address": "127.0.0.1", "port": 0},
            ],
        }
    ).encode()
    + b"\n"
)
GAPS = ("none", "busy", "sleep", "touch")


def helper_work(request: bytes) -> bytes:
    """What a helper does for a typical first request of a cell, and its reset."""
    decoded = json.loads(request)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
    os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd")
    return json.dumps({"outcome": "ok", "answers": decoded["requests"]}).encode() + b"\n"


def serve(sock: socket.socket) -> None:
    while True:
        data = sock.recv(65536)
        if not data:
            return
        sock.sendall(helper_work(data))


class Gap:
    """The caller's work between two requests."""

    def __init__(self) -> None:
        self.dicts = [{"n": i} for i in range(20_000)]

    def __call__(self, kind: str) -> None:
        if kind == "busy":
            end = time.perf_counter() + 0.001
            while time.perf_counter() < end:
                pass
        elif kind == "sleep":
            time.sleep(0.001)
        elif kind == "touch":
            for d in self.dicts:
                d["n"] += 1


def pin(pid: int, cpu: int) -> bool:
    setaffinity = getattr(os, "sched_setaffinity", None)
    if setaffinity is None:
        return False
    setaffinity(pid, {cpu})
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    if not hasattr(os, "fork"):
        print("needs fork() (POSIX)")
        return 1
    mine, theirs = socket.socketpair()
    cpu = min(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    pinned = pin(0, cpu)
    pid = os.fork()
    if pid == 0:
        mine.close()
        try:
            serve(theirs)
        finally:
            os._exit(0)
    theirs.close()
    if pinned:
        pin(pid, cpu)
    gap = Gap()
    per: dict[str, list[float]] = {g: [] for g in (*GAPS, "in this process")}
    for _ in range(args.rounds):
        for kind in GAPS:
            times = []
            for _ in range(args.requests):
                gap(kind)
                start = time.perf_counter()
                mine.sendall(REQUEST)
                mine.recv(65536)
                times.append(time.perf_counter() - start)
            per[kind].append(statistics.median(times))
        times = []
        for _ in range(args.requests):
            gap("touch")
            start = time.perf_counter()
            helper_work(REQUEST)
            times.append(time.perf_counter() - start)
        per["in this process"].append(statistics.median(times))
    mine.close()
    os.waitpid(pid, 0)
    where = f"both on CPU {cpu}" if pinned else "where the OS runs them"
    print(f"one request to a second process ({where}); medians of {args.rounds} rounds:")
    for kind, values in per.items():
        spread = ", ".join(f"{v * 1e6:.0f}" for v in values)
        label = "the same work, after touch" if kind == "in this process" else f"after {kind}"
        print(f"  {label:<28}{statistics.median(values) * 1e6:8.1f} us   rounds: {spread}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
