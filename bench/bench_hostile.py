"""A hostile neighbour against the engine: how many false verdicts, and at what cost?

    python bench/bench_hostile.py            # every cell of cases/, each pattern
    python bench/bench_hostile.py --quick    # a sample of cells (tests/test_hostile.py)
    python bench/bench_hostile.py --json     # also a last line of JSON figures
    python bench/bench_hostile.py --overhead # also the cost of the proofs per cell

Linux, root: the script moves itself into a private network namespace (the plugin's
own --bindconform-isolate=netns set-up), so nothing outside it is touched. It runs the
chosen cells once without a neighbour (the reference), then once per pattern with a
neighbour process that watches which port the run takes next:

  hold   binds the next ports (TCP and UDP, IPv4 and IPv6, wildcard or loopback) for 50 ms
  race   binds one of the next two ports for 1-4 ms, again and again
  share  SO_REUSEADDR+SO_REUSEPORT listeners and receivers on the current and next ports
         that accept and read whatever comes (they join the cell's sharing groups)
  blast  holds no port: sends datagrams and connects to the current and next port,
         about a thousand rounds a second

Per pattern: cells run, cells confounded (an interference error, a try retried, a port
passed over, or a verdict that differs), interference errors, false verdicts (a verdict
or observation other than the reference's), and run time. Bounded: each pattern's run
is one pass over the cells; the neighbour stops when it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import select
import socket
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_bindconform import cases, isolate  # noqa: E402
from pytest_bindconform.host import fingerprint  # noqa: E402
from pytest_bindconform.model import Cell, Suite  # noqa: E402
from pytest_bindconform.oracles import DEFAULT_GATES  # noqa: E402
from pytest_bindconform.ports import PortAllocator  # noqa: E402
from pytest_bindconform.runner import Context, execute  # noqa: E402

PATTERNS = ("hold", "race", "share", "blast")
ADDRESSES = (
    (socket.AF_INET, "0.0.0.0"),
    (socket.AF_INET, "127.0.0.1"),
    (socket.AF_INET, "127.0.0.2"),
    (socket.AF_INET6, "::"),
    (socket.AF_INET6, "::1"),
)


class Watched(PortAllocator):
    """The run's allocator, telling the neighbour which port comes next (a neighbour
    that guesses well is the worst case)."""

    def __init__(self, host: Any, ports: range, shared: Any):
        super().__init__(host, ports)
        self.shared = shared

    def take(self, *args: Any, **kwargs: Any) -> int:
        port = super().take(*args, **kwargs)
        self.shared.value = port
        return port


# -- the neighbour ------------------------------------------------------------------------


def _bind(family: int, kind: int, address: str, port: int, share: bool = False) -> Any:
    s = socket.socket(family, kind)
    try:
        if share:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, random.random() < 0.5)
        s.bind((address, port))
        if kind == socket.SOCK_STREAM and share:
            s.listen(64)
        s.setblocking(False)
        return s
    except OSError:
        s.close()
        return None


def _serve(held: list[socket.socket], until: float) -> None:
    """Accept and read whatever comes to the neighbour's sockets until `until`."""
    while time.monotonic() < until:
        ready, _, _ = select.select(held, [], [], max(0.0, until - time.monotonic()))
        for s in ready:
            try:
                if s.type == socket.SOCK_STREAM:
                    conn, _ = s.accept()
                    conn.close()
                else:
                    s.recv(2048)
            except OSError:
                pass


def _blast(port: int) -> None:
    for family, address in ADDRESSES:
        target = "127.0.0.1" if address == "0.0.0.0" else "::1" if address == "::" else address
        with socket.socket(family, socket.SOCK_DGRAM) as s, contextlib.suppress(OSError):
            s.sendto(b"neighbour " + os.urandom(4).hex().encode(), (target, port))
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect_ex((target, port))
            s.send(b"neighbour")
        except OSError:
            pass
        finally:
            s.close()


def neighbour(pattern: str, shared: Any, stop: Any, seed: int) -> None:
    random.seed(seed)
    while not stop.is_set():
        current = shared.value
        if not current:
            time.sleep(0.001)
            continue
        if pattern == "blast":
            for port in (current, current + 1):
                _blast(port)
            time.sleep(0.001)  # a steady stream, not a flood that only measures the CPU
            continue
        share = pattern == "share"
        ports = {"hold": [current + 1, current + 2, current + 3], "race": [current + 1]}.get(
            pattern, [current, current + 1]
        )
        if pattern == "race":
            ports = [current + random.choice((1, 2))]
        held = []
        for port in ports:
            for _ in range(2):
                family, address = random.choice(ADDRESSES)
                kind = random.choice((socket.SOCK_STREAM, socket.SOCK_DGRAM))
                s = _bind(family, kind, address, port, share)
                if s is not None:
                    held.append(s)
        hold_for = {"hold": 0.05, "race": random.uniform(0.001, 0.004)}.get(pattern, 0.02)
        if held:
            _serve(held, time.monotonic() + hold_for)
        for s in held:
            s.close()


# -- the run --------------------------------------------------------------------------------


def load(quick: bool) -> list[tuple[Cell, Suite]]:
    chosen = []
    for path in cases.discover(ROOT / "cases"):
        suite = cases.load_suite(path)
        step = 1
        if quick:  # every sharing and history case, a spread of the grids
            step = 1 if "sharing" in path.name or "history" in path.name else 29
        chosen += [(cell, suite) for cell in suite.cells[::step]]
    return chosen


def verdict_of(record: dict[str, Any]) -> tuple[Any, ...]:
    seen = record["observed"] or {}
    delivery = seen.get("delivery") or {}
    return record["status"], seen.get("outcome"), delivery.get("receiver")


def run_all(
    cells: list[tuple[Cell, Suite]], host: Any, ports: PortAllocator
) -> tuple[list[dict[str, Any]], list[int], float]:
    ctx = Context(host, dict(DEFAULT_GATES), ports)
    records, skipped = [], []
    start = time.perf_counter()
    for cell, suite in cells:
        before = ports.skipped
        records.append(execute(cell, suite, ctx))
        skipped.append(ports.skipped - before)
    return records, skipped, time.perf_counter() - start


def pattern_run(
    pattern: str,
    cells: list[tuple[Cell, Suite]],
    host: Any,
    ports: range,
    reference: list[dict[str, Any]],
) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    shared = context.Value("i", 0)
    stop = context.Event()
    allocator = Watched(host, ports, shared)
    child = context.Process(target=neighbour, args=(pattern, shared, stop, 7), daemon=True)
    child.start()
    try:
        records, skipped, seconds = run_all(cells, host, allocator)
    finally:
        stop.set()
        child.join(5)
        if child.is_alive():
            child.kill()
    errors, false, confounded = [], [], 0
    for record, was, passed_over in zip(records, reference, skipped, strict=True):
        if was["status"] == "error":
            continue  # the reference itself could not judge it: nothing to compare
        hit = record.get("confounded_tries") or passed_over
        if record["status"] == "error":
            errors.append(record["reason"])
            hit = True
        elif verdict_of(record) != verdict_of(was):
            false.append(f"{record['id']}: {verdict_of(was)} -> {verdict_of(record)}")
            hit = True
        confounded += bool(hit)
    return {
        "cells": len(records),
        "confounded": confounded,
        "interference_errors": len(errors),
        "false_verdicts": len(false),
        "seconds": round(seconds, 2),
        "errors": [reason[:400] for reason in errors[:5]],
        "false": false[:20],
    }


def overhead(host: Any, ports: range, rounds: int = 2000) -> dict[str, float]:
    """What the proofs add to one cell, timed on their own (a whole-run comparison drowns
    them in the noise of a loaded machine): one proof of the kinds a typical cell uses.
    A cell makes one (self-owned sockets, no conflict), two (a conflict, a delivery) or
    three (child-owned sockets with a conflict)."""
    from pytest_bindconform.ports import held

    out = {}
    for label, kinds in (
        ("tcp4", [("inet", "stream")]),
        ("udp4+udp6", [("inet", "dgram"), ("inet6", "dgram")]),
    ):
        start = time.perf_counter()
        for i in range(rounds):
            held(ports[i % len(ports)], host, kinds)
        out[label] = (time.perf_counter() - start) / rounds * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a sample of cells")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    parser.add_argument("--overhead", action="store_true", help="also time the proofs")
    parser.add_argument("--patterns", default=",".join(PATTERNS))
    args = parser.parse_args()
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        raise SystemExit("bench_hostile needs Linux and root (a private network namespace)")
    isolate.enter_netns()
    host = fingerprint(isolation="netns")
    cells = load(args.quick)
    ports = range(21000, 29000)
    reference, _, seconds = run_all(cells, host, PortAllocator(host, ports))
    print(f"{len(cells)} cells; reference run without a neighbour: {seconds:.2f} s")
    figures: dict[str, Any] = {"cells": len(cells), "reference_seconds": seconds, "patterns": {}}
    print(
        f"{'pattern':<8} {'cells':>6} {'confounded':>11} {'interference':>13} "
        f"{'false':>6} {'seconds':>8}"
    )
    for pattern in args.patterns.split(","):
        row = pattern_run(pattern, cells, host, ports, reference)
        figures["patterns"][pattern] = row
        print(
            f"{pattern:<8} {row['cells']:>6} {row['confounded']:>11} "
            f"{row['interference_errors']:>13} {row['false_verdicts']:>6} {row['seconds']:>8.2f}"
        )
        for line in row["false"]:
            print(f"  FALSE {line}")
        for line in sorted({reason[:150] for reason in row["errors"]})[:3]:
            print(f"  e.g. {line}")
    if args.overhead:
        cost = overhead(host, ports)
        figures["proof_us"] = cost
        print(
            "one proof: "
            + ", ".join(f"{k} {v:.1f} us" for k, v in cost.items())
            + f"; a cell makes 1-3 (reference run: {seconds / len(cells) * 1e6:.0f} us per cell)"
        )
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
