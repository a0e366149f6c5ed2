"""Cost of cells whose sockets live in another process, measured side by side in one run.

For every child-owner cell of the library (a socket with `owner: process` or
`owner: other-user`) it times probe.run() three ways, medians of --rounds rounds (pool
and floor interleaved, then fork: its aftermath slowed the next pooled cells):
  fork  the old way: this process forks one child per cell (the child serves the
        cell and exits; other-user: it setuids first);
  pool  the way now: a pooled helper (ownerpool.py) started once, reset between cells;
        on Linux it is moved to this process's CPU before each request (linux.colocate);
  unmoved  the same pool with its helpers left where the kernel runs them;
  floor the same cell with every socket owned by this process: no process boundary.
Pool and unmoved are timed back to back and again with --gap-ms of other work before
each cell (in library order, self-owned cells run in between and the helper's CPU
goes idle). The old way's cost grows with the size of the forking process: this one loads the
whole library as pytest does, and its size is printed. Cells with a `kill` step are
timed apart (the pool replaces a killed helper). The one-time start of a pool is
printed too.

    /work/nsrun python bench/bench_owner.py                 # the figures
    python bench/bench_owner.py --compare BEFORE.json AFTER.json
        # every cell's status, verdicts, outcome and step outcomes, before and after
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_bindconform import (  # noqa: E402
    candidates,
    cases,
    goals,
    host,
    owner,
    ownerpool,
    platforms,
    ports,
    probe,
)
from pytest_bindconform.plan import Unrunnable  # noqa: E402


class ForkPerCell:
    """The old owner.Child: fork this whole process for one cell, setuid for other-user."""

    def __init__(self, kind: str):
        ids = platforms._posix.other_user_ids() if kind == "other-user" else None
        to_child_r, to_child_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.close(to_child_w)
                os.close(to_parent_r)
                if isinstance(ids, tuple):
                    os.setgroups([])
                    os.setgid(ids[1])
                    os.setuid(ids[0])
                owner.serve(os.fdopen(to_child_r, "r"), os.fdopen(to_parent_w, "w"))
            finally:
                os._exit(0)
        os.close(to_child_r)
        os.close(to_parent_w)
        self.wfile, self.rfile = os.fdopen(to_child_w, "w"), os.fdopen(to_parent_r, "r")
        self.helper = ownerpool.Helper(kind, self)
        assert self.helper.reset()  # the first round trip, as the old hello

    def do(self, req: dict[str, Any]) -> dict[str, Any]:
        return self.helper.do(req)

    def kill(self) -> None:
        os.kill(self.pid, 9)
        self.close()

    def close(self) -> None:
        for f in (self.wfile, self.rfile):
            with contextlib.suppress(OSError):
                f.close()
        if self.pid:
            os.waitpid(self.pid, 0)
            self.pid = 0


Cell = tuple[Any, Any, list[Any], dict[str, str] | None, bool]


def child_owner_cells(h: host.Host) -> list[Cell]:
    """(cell, profile, planned sockets, factories, has a kill step) of every runnable
    child-owner cell of the library, as runner.execute() prepares them."""
    found = []
    for path in sorted((ROOT / "cases").glob("*.bind.yaml")):
        suite = cases.load_suite(path)
        for cell in suite.cells:
            if all(s.owner == "self" for s in cell.sockets):
                continue
            profile = suite.profiles.get(cell.profile) if cell.profile else None
            try:
                planned = probe.plan(cell, profile, h)
                situation = goals.of(suite, cell)
                made_by = goals.factories(situation) if situation else None
                if made_by:
                    for target in set(made_by.values()):
                        candidates.load_factory(target)  # one that cannot run here: skipped
            except (Unrunnable, candidates.FactoryProblem):
                continue
            kill = any(s.call == "kill" for s in cell.steps)
            found.append((cell, profile, planned, made_by, kill))
    return found


def _unmoved(self: Any) -> None:
    """ForkedHelper.follow() for the 'unmoved' way: the helper stays where it runs."""


def time_cells(
    cells: list[Cell], h: host.Host, pool: ports.PortAllocator, way: str, gap: float = 0.0
) -> list[float]:
    probe.Child = ForkPerCell if way == "fork" else ownerpool.Child  # type: ignore[misc]
    helper_class = platforms._posix.ForkedHelper
    helper_class.follow = _unmoved if way == "unmoved" else FOLLOW  # type: ignore[method-assign]
    out = []
    for cell, profile, planned, made_by, kill in cells:
        if way == "floor":
            if kill:
                continue  # a kill needs another process
            planned = [dataclasses.replace(p, owner="self") for p in planned]
        port = pool.take(prove=False)
        busy_until = time.perf_counter() + gap
        while time.perf_counter() < busy_until:  # other work, as a self-owned cell's
            pass
        start = time.perf_counter()
        probe.run(cell, planned, port, h, profile, factories=made_by)
        out.append(time.perf_counter() - start)
    helper_class.follow = FOLLOW  # type: ignore[method-assign]
    return out


FOLLOW = platforms._posix.ForkedHelper.follow


def round_trips(rounds: int) -> dict[str, float]:
    """Median time of one trivial request (a reset of an empty helper)."""
    out = {}
    for kind in ("process", "other-user"):
        child = ownerpool.Child(kind)
        assert child.helper is not None
        times = []
        for _ in range(200 * rounds):
            start = time.perf_counter()
            child.helper.do({"op": "reset"})
            times.append(time.perf_counter() - start)
        child.close()
        out[kind] = statistics.median(times)
    return out


def requests_per_cell(cells: list[Cell]) -> list[int]:
    """How many requests each cell sends to its helpers (the reset included)."""
    counted: list[int] = []
    real = ownerpool.Helper.do

    def counting(self: ownerpool.Helper, req: dict[str, Any]) -> dict[str, Any]:
        counted[-1] += 1
        return real(self, req)

    h = host.fingerprint()
    allocator = ports.PortAllocator(h, range(*ports.default_range(h)))
    ownerpool.Helper.do = counting  # type: ignore[method-assign]
    try:
        for cell in cells:
            counted.append(0)
            time_cells([cell], h, allocator, "pool")
    finally:
        ownerpool.Helper.do = real  # type: ignore[method-assign]
    return counted


def measure(rounds: int, gap: float) -> None:
    h = host.fingerprint()
    cells = child_owner_cells(h)
    pool = ports.PortAllocator(h, range(*ports.default_range(h)))
    start = time.perf_counter()
    ownerpool.prestart({"process", "other-user"})
    for kind in ("process", "other-user"):
        ownerpool.Child(kind).close()
    started = time.perf_counter() - start
    rtt = round_trips(rounds)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    groups = {
        "process": [c for c in cells if not c[4] and all(p.owner != "other-user" for p in c[2])],
        "other-user": [c for c in cells if any(p.owner == "other-user" for p in c[2])],
        "kill (process)": [c for c in cells if c[4]],
    }
    per: dict[tuple[str, str], list[float]] = {}
    # pool and floor interleaved, the old way in rounds of its own after them: right after
    # forking this whole process once per cell, pooled cells ran ~0.1 ms slower here (the
    # forks' aftermath: caches, page tables), which a run without forks never meets
    for ways in (("pool", "unmoved", "floor", "pool+gap", "unmoved+gap"), ("fork",)):
        for _ in range(rounds):
            for way in ways:
                plain, _, spaced = way.partition("+")
                for name, group in groups.items():
                    times = time_cells(group, h, pool, plain, gap if spaced else 0.0)
                    if times:
                        per.setdefault((name, way), []).append(statistics.median(times))
    ownerpool.shutdown()
    print(f"child-owner cells of the library: {len(cells)}; this process: {rss:.0f} MB max RSS")
    print(f"one-time start of both pools (process, other-user): {started * 1e3:.1f} ms")
    print(
        f"raw floor: one request to a pooled helper {rtt['process'] * 1e6:.0f} us (process), "
        f"{rtt['other-user'] * 1e6:.0f} us (other-user); a cell makes "
        f"{statistics.median(requests_per_cell(cells)):.0f} requests (median) there"
    )
    print(f"per cell, median over {rounds} rounds of each group's median:")
    print(f"  {'group':<16}{'cells':>6}{'fork/cell':>12}{'pool':>10}{'floor':>10}{'fork/pool':>11}")
    median = {k: statistics.median(v) * 1e3 for k, v in per.items()}
    for name, group in groups.items():
        fork, pooled, floor = (median.get((name, w), NAN) for w in ("fork", "pool", "floor"))
        print(
            f"  {name:<16}{len(group):>6}{fork:>10.3f}ms{pooled:>8.3f}ms{floor:>8.3f}ms"
            f"{fork / pooled:>10.1f}x   pool - floor {pooled - floor:.3f} ms"
        )
    moved = "moved to this CPU" if sys.platform == "linux" else "never moved on this OS"
    print(f"helpers {moved} / left where they run: back to back; after {gap * 1e3:g} ms of work")
    for name in groups:
        a, b, c, d = (
            median.get((name, w), NAN) for w in ("pool", "unmoved", "pool+gap", "unmoved+gap")
        )
        print(
            f"  {name:<16}{a:>8.3f} / {b:.3f} ms = {a / b:.2f}x;"
            f"  {c:.3f} / {d:.3f} ms = {c / d:.2f}x"
        )


NAN = float("nan")


# -- before/after: the library's results, cell for cell ------------------------------
def cell_facts(result: dict[str, Any]) -> dict[str, Any]:
    observed = result.get("observed") or {}
    delivery = observed.get("delivery") or {}
    return {
        "status": result.get("status"),
        "gate": result.get("gate"),
        "verdicts": result.get("verdicts"),
        "outcome": observed.get("outcome"),
        "steps": [
            (s["socket"], s["call"].split()[0], s["outcome"]) for s in observed.get("steps", [])
        ],
        "receiver": delivery.get("receiver"),
    }


def compare(before: Path, after: Path) -> int:
    old, new = ({r["id"]: r for r in json.loads(p.read_text())["results"]} for p in (before, after))
    differ = []
    for cid in sorted(old.keys() | new.keys()):
        if cid not in old or cid not in new:
            differ.append(f"{cid}: only in {'after' if cid in new else 'before'}")
            continue
        a, b = cell_facts(old[cid]), cell_facts(new[cid])
        if a != b:
            keys = [k for k in a if a[k] != b[k]]
            differ.append(f"{cid}: " + "; ".join(f"{k} {a[k]} -> {b[k]}" for k in keys))
    print(f"{len(old)} cells before, {len(new)} after; {len(differ)} differ")
    for line in differ:
        print(f"  {line}")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gap-ms", type=float, default=1.0, help="other work before each cell")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    measure(args.rounds, args.gap_ms / 1e3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
