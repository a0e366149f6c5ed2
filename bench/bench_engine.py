"""Engine cost, measured side by side in one run.

On one grid of bind pairs (option sets x addresses for two TCP sockets, bound
only, and the same for UDP) it times:
  (a) the plugin: `pytest` on a generated *.bind.yaml grid;
  (b) a hand-written `@pytest.mark.parametrize` test making the same socket calls;
  (c) a plain Python loop making the same socket calls.
(a) and (b) run as pytest subprocesses, interleaved; their cost per case is pytest's run
loop timed from inside (start-up and teardown left out), the median of 7 runs. All three
make the same socket calls, the delivery probe of shared UDP cells included. It also times
loading every file in cases/ (cold and through the suite cache) and
`pytest cases --collect-only`, and the whole library run with -n 0 and -n 2.

    python bench/bench_engine.py            # all of it
    python bench/bench_engine.py --quick    # skip the whole-library runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPTION_SETS = [[], ["SO_REUSEADDR"], ["SO_REUSEPORT"], ["SO_REUSEADDR", "SO_REUSEPORT"]]
ADDRESSES = ["0.0.0.0", "127.0.0.1", "127.0.0.2"]
TYPES = ["stream", "dgram"]
ENDPOINTS = [(o, a) for o in OPTION_SETS for a in ADDRESSES]


def grid_yaml(endpoints: list[tuple[list[str], str]], types: list[str]) -> str:
    values = "\n".join(
        f'      - {{options: {json.dumps(o)}, address: "{a}"}}' for o, a in endpoints
    )
    table = "\n".join(
        "        - [" + ", ".join(["unknown"] * len(endpoints)) + "]" for _ in endpoints
    )
    return textwrap.dedent(
        """\
        format: 1
        id: bench-pairs
        title: bench grid
        references: []
        oracles:
          linux:
            kind: measured
            source: bench
            applies: {os: linux}
        grid:
          variants: {type: %s}
          rows:
            socket: second
            values:
        %s
          columns:
            socket: first
            values:
        %s
          expect:
            - oracle: linux
              table:
        %s
        """
    ) % (json.dumps(types), values, values, table)


# The socket calls of one cell, as the plugin makes them: bind both sockets and, when two
# UDP sockets share the port, send 16 datagrams from 16 clients and count who receives them.
PAIR = """
import errno, select, socket, struct

def make(kind, options):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM)
    for name in options:
        s.setsockopt(socket.SOL_SOCKET, getattr(socket, name), 1)
    return s

def pair(kind, first, second, port):
    a, b = make(kind, first[0]), make(kind, second[0])
    try:
        a.bind((first[1], port))
        try:
            b.bind((second[1], port))
        except OSError as exc:
            return errno.errorcode[exc.errno]
        if kind == "dgram":
            target = next((x for x in (second[1], first[1]) if x != "0.0.0.0"), "127.0.0.1")
            clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(16)]
            for c in clients:
                c.connect((target, port))
                c.send(b"x")
            for s in (a, b):
                while select.select([s], [], [], 0)[0]:
                    s.recv(100)
            for c in clients:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
        return "ok"
    finally:
        a.close()
        b.close()
"""

HAND_WRITTEN = (
    PAIR
    + """
import itertools, pytest
OPTION_SETS = {option_sets!r}
ADDRESSES = {addresses!r}
TYPES = {types!r}
CELLS = [(t, f, s) for t in TYPES for s in itertools.product(OPTION_SETS, ADDRESSES)
         for f in itertools.product(OPTION_SETS, ADDRESSES)][:{limit}]
PORT = iter(range(30000, 30999))

@pytest.mark.parametrize("kind,first,second", CELLS)
def test_pair(kind, first, second):
    assert pair(kind, first, second, next(PORT)) in ("ok", "EADDRINUSE")
"""
)

# Times pytest's run loop from inside, so interpreter start-up and session teardown
# (which vary by a quarter of a second here) stay out of the per-case figure.
LOOP_TIMER = """
import time, pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_runtestloop(session):
    start = time.perf_counter()
    yield
    with open("loop.txt", "w") as fh:
        fh.write(str(time.perf_counter() - start))
"""


def loop_time(args: list[str], cwd: Path) -> float:
    (cwd / "conftest.py").write_text(LOOP_TIMER)
    pytest_run(args, cwd)
    return float((cwd / "loop.txt").read_text())


def pytest_run(args: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(
            f"pytest failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return elapsed


def per_case_side_by_side(cells: int, runs: int = 7) -> tuple[float, float]:
    """Median per-case run-loop cost of (a) and (b), interleaved run by run so drift hits both."""
    samples_a, samples_b = [], []
    with tempfile.TemporaryDirectory() as tmp:
        a_dir, b_dir = Path(tmp, "a"), Path(tmp, "b")
        a_dir.mkdir()
        b_dir.mkdir()
        a_args, b_args = plugin_dir(a_dir, cells), hand_dir(b_dir, cells)
        loop_time(a_args, a_dir)  # warm the suite cache and bytecode once
        for _ in range(runs):
            samples_a.append(loop_time(a_args, a_dir) / cells)
            samples_b.append(loop_time(b_args, b_dir) / cells)
    return sorted(samples_a)[runs // 2], sorted(samples_b)[runs // 2]


def measured(path: Path) -> None:
    """Fill the grid's linux table from a real run, so cells pass like real gated cells."""
    sys.path.insert(0, str(ROOT))
    from pytest_bindconform import cases, measure
    from pytest_bindconform.host import fingerprint

    suite = cases.load_suite(path)
    block = measure.render(
        "linux",
        None,
        measure.blocks(measure.tables(suite, measure.observe(suite, fingerprint(), None))),
    )
    text = path.read_text()
    path.write_text(
        text[: text.index("    - oracle: linux")] + block.replace("    - ", "    - ", 1) + "\n"
    )


def plugin_dir(path: Path, cells: int) -> list[str]:
    grid = path / "grid.bind.yaml"
    grid.write_text(grid_yaml(ENDPOINTS, TYPES))
    measured(grid)
    assert cells == len(TYPES) * len(ENDPOINTS) ** 2
    return ["-p", "no:xdist", "-o", "bindconform_cases="]


def hand_dir(path: Path, cells: int) -> list[str]:
    (path / "test_hand.py").write_text(
        HAND_WRITTEN.format(option_sets=OPTION_SETS, addresses=ADDRESSES, types=TYPES, limit=cells)
    )
    return ["-p", "no:xdist", "-p", "no:bindconform", "test_hand.py"]


def plain_loop() -> float:
    namespace: dict[str, Any] = {}
    exec(PAIR, namespace)  # the very code the parametrize test runs
    cells = [(t, f, s) for t in TYPES for s in ENDPOINTS for f in ENDPOINTS]
    start = time.perf_counter()
    for port, (kind, first, second) in enumerate(cells, start=31000):
        namespace["pair"](kind, first, second, port)
    return (time.perf_counter() - start) / len(cells)


def library_load() -> tuple[float, float, int]:
    code = textwrap.dedent("""
        import os, sys, time, tempfile
        from pathlib import Path
        sys.path.insert(0, %r)
        from pytest_bindconform import cases, suitecache
        os.environ["BINDCONFORM_CACHE_DIR"] = tempfile.mkdtemp()
        files = cases.discover(Path(%r))
        def timed():
            t = time.perf_counter()
            n = sum(len(suitecache.load(p).cells) for p in files)
            return time.perf_counter() - t, n
        (cold, n), (warm, _) = timed(), timed()
        print(cold, warm, n)
    """) % (str(ROOT), str(ROOT / "cases"))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="skip the whole-library runs")
    args = parser.parse_args()
    n = len(TYPES) * len(ENDPOINTS) ** 2
    print(f"grid: {len(ENDPOINTS)} x {len(ENDPOINTS)} bind pairs x {len(TYPES)} types = {n} cells")
    a, b = per_case_side_by_side(n)
    c = plain_loop()
    print(f"(a) plugin             {a * 1e6:8.1f} us/case")
    print(f"(b) parametrize test   {b * 1e6:8.1f} us/case")
    print(f"(c) plain loop         {c * 1e6:8.1f} us/case")
    print(f"ratio (a)/(b) = {a / b:.2f}   (target <= 1.1)")
    print(f"ratio (b)/(c) = {b / c:.2f}   (pytest's own per-test cost)")
    cold, warm, cells = library_load()
    print(
        f"load all of cases/ ({cells} cells): cold {cold:.3f} s, "
        f"cached {warm:.3f} s (target < 0.3 s)"
    )
    t = pytest_run(["cases", "--collect-only"], ROOT)
    print(f"pytest cases --collect-only: {t:.2f} s wall (includes interpreter and plugin start-up)")
    if not args.quick:
        for workers in ("0", "2"):
            t = pytest_run(["cases", "-n", workers], ROOT)
            print(f"pytest cases -n {workers}: {t:.1f} s wall")


if __name__ == "__main__":
    main()
