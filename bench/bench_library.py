"""The whole case library against pytest's own floor, measured side by side in one run.

Figures, each the median of --runs interleaved rounds (every round runs every
configuration once, so load on the machine hits all of them alike):
  * `pytest cases -n 0` (the library as shipped) and a floor: a generated suite of the
    same number of bare pytest items doing nothing (the plugin disabled); their ratio,
    including and excluding the cells whose sockets live in a child process
    (owner: process / other-user, deselected with --deselect);
  * the engine's own cost per cell without pytest: runner.execute over every cell;
  * the library with its engine replayed (bench/replay_engine.py: each cell's record,
    saved by an untimed run, given back instead of running it): a cell's pytest side
    against a bare item, and so the engine's share of the ratio;
  * -n 0 against -n N on the 1x library and on a Kx library (copies of the case files
    with new suite ids in a temporary directory); cost per cell at Kx against 1x;
  * the most -n N could gain here: the Kx library's files dealt out to N folders and run
    as N independent `-n 0` processes at once, each with its own port range
    (bench/apart.py): no controller, no distribution, each collecting only its share;
  * plain pytest-xdist's own gain at that weight: -n 0 against -n N on as many bare
    items as the Kx library has cells, each spending the engine's CPU per cell;
  * peak RSS per cell (and the extra RSS per extra cell between 1x and Kx);
  * with xdist: messages and bytes per cell that workers send the controller
    (bench/xdist_meter.py), and whether setup/teardown reports carry anything.

Run it in a private network namespace, from the repository root:

    /work/nsrun .venv/bin/python bench/bench_library.py            # 3 rounds
    /work/nsrun .venv/bin/python bench/bench_library.py --runs 5 --scale 4 --workers 2
    /work/nsrun .venv/bin/python bench/bench_library.py --src /tmp/old-checkout  # another tree

--src measures another checkout of the package (its pytest_bindconform/ and cases/ are
used through PYTHONPATH), e.g. the tree before a change. PYTHONDONTWRITEBYTECODE is
never set: pytest would then rewrite every plugin module in every process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from pytest_bindconform.ports import DEFAULT_RANGE

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent

# The library's cells as the plugin collects them: the suites, plus the cells of run-time
# candidates (library profiles) that collection adds to goal suites.
SUITES = r"""
import sys
from pathlib import Path
from pytest_bindconform import goals, host, suitecache
from pytest_bindconform.report import answers

def library(folder):
    extra = answers.run_candidates([], "", host.os_family()).extra
    out = []
    for p in sorted(Path(folder).glob("*.bind.yaml")):
        suite = suitecache.load(p, display=f"cases/{p.name}")
        goals.add_candidates(suite, extra)
        out.append(suite)
    return out
"""

ENGINE = (
    SUITES
    + r"""
import gc, json, time
import pytest_bindconform
from pytest_bindconform import oracles, runner, state

TREE = Path(pytest_bindconform.__file__).resolve().parent  # the checkout measured

h = host.fingerprint("host")
ctx = state.RunState(h, oracles.parse_gates([]), None, (0, 1)).context()
cells = [(c, s) for s in library(sys.argv[1]) for c in s.cells]
# as in a pytest run: the owner zygotes start during collection (plugin.py), and what
# collection made is frozen out of the GC's scans (gcpolicy.py); a zygote's start (some
# 0.3 s each) would otherwise land on the first child-owner cells. A tree from before
# the pool (ownerpool.py) forked a child per cell: it has nothing to start.
if (TREE / "ownerpool.py").exists():
    from pytest_bindconform import ownerpool

    ownerpool.prestart({x.owner for c, _ in cells for x in c.sockets} - {"self", "unprivileged"})
time.sleep(1.0)
gc.collect()
gc.freeze()
times = {"self": 0.0, "child": 0.0}
counts = {"self": 0, "child": 0}
for cell, suite in cells:
    kind = "child" if any(spec.owner != "self" for spec in cell.sockets) else "self"
    t = time.perf_counter()
    runner.execute(cell, suite, ctx)
    times[kind] += time.perf_counter() - t
    counts[kind] += 1
loaded = [
    m.__file__ for n, m in list(sys.modules.items())
    if n.split(".")[0] == "pytest_bindconform" and getattr(m, "__file__", None)
]
foreign = sorted(f for f in loaded if not Path(f).resolve().is_relative_to(TREE))
print(json.dumps({"times": times, "counts": counts, "tree": str(TREE), "foreign": foreign}))
"""
)


def env_for(src: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    paths = [str(BENCH)] + ([str(src)] if src != ROOT else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra or {})
    return env


class Run(NamedTuple):
    wall: float  # seconds
    peak: int  # peak RSS in KB of the process and what it waited for
    out: str
    cpu: float  # user + system seconds of the process and every child it reaped
    steal: float  # share of the machine's CPU time the hypervisor took meanwhile (Linux)


def cpu_times() -> tuple[int, int] | None:
    """(steal, total) jiffies of the whole machine so far, from /proc/stat (Linux)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return ticks[7], sum(ticks)


def run(args: list[str], cwd: Path, env: dict[str, str]) -> Run:
    before = cpu_times()
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    after = cpu_times()
    if proc.returncode not in (0, 1):  # 1: some cell failed, which is a result
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}:\n{out[-3000:]}")
    steal = 0.0
    if before and after and after[1] > before[1]:
        steal = (after[0] - before[0]) / (after[1] - before[1])
    return Run(wall, usage.ru_maxrss, out, usage.ru_utime + usage.ru_stime, steal)


def scaled_library(cases: Path, into: Path, copies: int) -> Path:
    """copies x the case files, each copy with its own suite id and file name."""
    into.mkdir(parents=True, exist_ok=True)
    for path in sorted(cases.glob("*.bind.yaml")):
        text = path.read_text()
        for k in range(copies):
            stem = path.name.removesuffix(".bind.yaml")
            name = path.name if k == 0 else f"{stem}-copy{k}.bind.yaml"
            body = text if k == 0 else re.sub(r"(?m)^id: *(\S+)", rf"id: \1-copy{k}", text, count=1)
            (into / name).write_text(body)
    return into


def split_library(folder: Path, into: Path, parts: int) -> list[Path]:
    """The case files of `folder` dealt out to `parts` folders (each with its own cases/):
    a scaled library's copies are alike, so each folder gets the same weight."""
    outs = [into / str(i) for i in range(parts)]
    for out in outs:
        (out / "cases").mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(sorted(folder.glob("*.bind.yaml"))):
        shutil.copy(path, outs[i % parts] / "cases" / path.name)
    return outs


def child_owner_ids(folder: Path, src: Path) -> list[str]:
    """Node ids of the cells with a socket in another process (what the owner helper does)."""
    code = SUITES + (
        "for s in library(sys.argv[1]):\n"
        "    for c in s.cells:\n"
        "        if any(x.owner != 'self' for x in c.sockets): print(f'{s.path}::{c.name}')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        cwd=src,  # this checkout's package first (engine_run says why)
        env=env_for(src),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def count_cells(folder: Path, src: Path) -> int:
    code = SUITES + "print(sum(len(s.cells) for s in library(sys.argv[1])))"
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        cwd=src,  # this checkout's package first (engine_run says why)
        env=env_for(src),
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


FLOOR_CONFTEST = """
import pytest

N = int(open(__file__.replace("conftest.py", "count")).read())
LOOPS = int(open(__file__.replace("conftest.py", "loops")).read())

class Bare(pytest.Item):
    def runtest(self):
        pass

class Busy(pytest.Item):
    def runtest(self):
        x = 0
        for i in range(LOOPS):
            x += i

class Floor(pytest.File):
    def collect(self):
        kind = Busy if LOOPS else Bare
        for i in range(N):
            yield kind.from_parent(self, name=f"cell{i}")

def pytest_collect_file(file_path, parent):
    if file_path.name == "floor.txt":
        return Floor.from_parent(parent, path=file_path)
"""


def floor_dir(into: Path, items: int, loops: int = 0) -> Path:
    """A suite of bare items doing nothing or, with loops, each spending that much CPU."""
    into.mkdir(parents=True, exist_ok=True)
    (into / "conftest.py").write_text(FLOOR_CONFTEST)
    (into / "count").write_text(str(items))
    (into / "loops").write_text(str(loops))
    (into / "floor.txt").write_text("")
    return into


def loops_for(seconds: float) -> int:
    """How many turns of the busy items' loop take this long here (calibrated now)."""
    n, start = 200_000, time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return max(1, round(n * seconds / (time.perf_counter() - start)))


def engine_run(one: Path, src: Path) -> dict[str, Any]:
    """runner.execute over every cell of the library, without pytest: its times per kind.
    Run from `src`, whose package `python -c` then finds first (the current directory
    comes before PYTHONPATH); every module it loads must be that checkout's: the editable
    install would otherwise lend one a tree lacks from this one, unseen."""
    out = run([sys.executable, "-c", ENGINE, str(one)], src, env_for(src)).out
    figures_line = [ln for ln in out.splitlines() if ln.startswith('{"times"')][-1]
    figures: dict[str, Any] = json.loads(figures_line)  # stderr is mixed in
    tree = str((src / "pytest_bindconform").resolve())
    if figures["tree"] != tree or figures["foreign"]:
        raise SystemExit(
            f"the engine run of {src} loaded modules of another checkout "
            f"(package {figures['tree']}; from elsewhere: {figures['foreign']}): "
            "its figures would not be that checkout's"
        )
    return figures


PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
PORTS = "-".join(map(str, DEFAULT_RANGE))  # the plugin's default range, split by apart.py


Config = tuple[list[str], Path, dict[str, str], Path]  # command, cwd, extra env, source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--scale", type=int, default=4, help="copies of the library")
    parser.add_argument("--workers", type=int, default=2, help="xdist workers (-n)")
    parser.add_argument("--src", type=Path, default=ROOT, help="checkout to measure")
    parser.add_argument(
        "--before", type=Path, help="another checkout, measured in the same rounds (before/after)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-scaled", action="store_true", help="skip the Kx library")
    args = parser.parse_args()
    sources = {"after" if args.before else "": args.src.resolve()}
    if args.before:
        sources = {"before": args.before.resolve(), **sources}
    tmp = Path(tempfile.mkdtemp(prefix="bench-library-"))
    try:
        figures = measure(sources, tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


def configs_for(
    src: Path, tmp: Path, args: argparse.Namespace
) -> tuple[dict[str, Config], dict[str, Any]]:
    """Every pytest run to time for one checkout, and what the figures need to know."""
    one = scaled_library(src / "cases", tmp / "lib1" / "cases", 1)
    cells = count_cells(one, src)
    child = child_owner_ids(one, src)
    (tmp / "lib1" / "deselect").write_text(
        "\n".join(f"--deselect={nodeid}" for nodeid in child) + "\n"
    )
    floor1 = floor_dir(tmp / "floor1", cells)
    floor_self = floor_dir(tmp / "floor-self", cells - len(child))
    w = str(args.workers)
    bare = PYTEST + ["-p", "no:bindconform", "floor.txt", "-n", "0"]
    configs: dict[str, Config] = {
        "lib n0": (PYTEST + ["cases", "-n", "0"], one.parent, {}, src),
        "lib n0 no child-owner": (PYTEST + ["cases", "-n", "0", "@deselect"], one.parent, {}, src),
        "floor n0": (bare, floor1, {}, src),
        "floor n0 no child-owner": (bare, floor_self, {}, src),
        f"lib n{w}": (
            PYTEST + ["cases", "-n", w, "-p", "xdist_meter"],
            one.parent,
            {"XDIST_METER_OUT": str(tmp / "meter1.json")},
            src,
        ),
    }
    # the library with every record replayed (bench/replay_engine.py): its pytest side only
    records = tmp / "records.pkl"
    replay = PYTEST + ["cases", "-n", "0", "-p", "replay_engine"]
    run(replay, one.parent, env_for(src, {"BENCH_RECORDS_SAVE": str(records)}))  # untimed
    configs["lib n0 engine replayed"] = (replay, one.parent, {"BENCH_RECORDS": str(records)}, src)
    meta: dict[str, Any] = {"cells": cells, "child": len(child), "tmp": tmp, "one": one}
    if not args.no_scaled and args.scale > 1:
        many = scaled_library(src / "cases", tmp / "libK" / "cases", args.scale)
        meta["scaled_cells"] = count_cells(many, src)
        configs[f"lib{args.scale}x n0"] = (PYTEST + ["cases", "-n", "0"], many.parent, {}, src)
        configs[f"lib{args.scale}x n{w}"] = (
            PYTEST + ["cases", "-n", w, "-p", "xdist_meter"],
            many.parent,
            {"XDIST_METER_OUT": str(tmp / "meterK.json")},
            src,
        )
        # the same cells in N folders, run as N independent -n 0 processes at once: the
        # most -n N could gain here, under the same load (bench/apart.py)
        halves = split_library(many, tmp / "apart", args.workers)
        configs[f"lib{args.scale}x {w} apart"] = (
            [sys.executable, str(BENCH / "apart.py"), PORTS, *map(str, halves), "--"]
            + PYTEST[3:]  # its own "python -m pytest" per folder
            + ["cases", "-n", "0"],
            tmp,
            {},
            src,
        )
        # plain pytest-xdist on as many bare items, each spending the engine's CPU per cell
        times = engine_run(one, src)["times"]
        meta["busy_ms"] = 1e3 * sum(times.values()) / cells
        busy = floor_dir(tmp / "busyK", meta["scaled_cells"], loops_for(meta["busy_ms"] / 1e3))
        for n in ("0", w):
            configs[f"busy{args.scale}x n{n}"] = (
                PYTEST + ["-p", "no:bindconform", "floor.txt", "-n", n],
                busy,
                {},
                src,
            )
    return configs, meta


def measure(sources: dict[str, Path], tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    plans = {
        label: configs_for(src, tmp / (label or "run"), args) for label, src in sources.items()
    }
    every = {
        (label, name): c for label, (configs, _) in plans.items() for name, c in configs.items()
    }
    walls: dict[tuple[str, str], list[float]] = {key: [] for key in every}
    rss: dict[tuple[str, str], list[int]] = {key: [] for key in every}
    cpus: dict[tuple[str, str], list[float]] = {key: [] for key in every}
    steals: list[float] = []
    engine: dict[str, list[dict[str, Any]]] = {label: [] for label in sources}
    keys = list(every)
    for round_ in range(args.runs):
        shift = round_ % len(keys)
        for key in keys[shift:] + keys[:shift]:  # a different order each round
            command, cwd, extra, src = every[key]
            done = run(command, cwd, env_for(src, extra))
            walls[key].append(done.wall)
            rss[key].append(done.peak)
            cpus[key].append(done.cpu)
            steals.append(done.steal)
            print(
                f"  round {round_ + 1} {key[0]} {key[1]}: {done.wall:.2f} s "
                f"(CPU {done.cpu:.2f} s, steal {100 * done.steal:.0f} %)",
                flush=True,
            )
        for label, src in sources.items():
            engine[label].append(engine_run(plans[label][1]["one"], src))
    figures: dict[str, Any] = {}
    for label, src in sources.items():
        print(f"\n== {label or 'figures'}: {src}; {args.runs} interleaved rounds, medians")
        med = {n: statistics.median(v) for (lb, n), v in walls.items() if lb == label}
        peak = {n: max(v) for (lb, n), v in rss.items() if lb == label}
        rounds = {n: v for (lb, n), v in walls.items() if lb == label}
        figures[label or "figures"] = report(plans[label][1], med, peak, engine[label], args)
        figures[label or "figures"]["per_round"] = per_round(rounds, plans[label][1], args)
        cpu = {n: v for (lb, n), v in cpus.items() if lb == label}
        figures[label or "figures"]["cpu"] = cpu_figures(cpu, steals)
    if len(sources) == 2:
        b, a = figures["before"], figures["after"]
        print("\n== after against before (same rounds)")
        for figure in (
            "wall_lib_n0",
            "ratio",
            "ratio_no_child",
            "engine_ms",
            "xdist_speedup_1x",
            "xdist_speedup_kx",
            "apart_speedup_kx",
        ):
            if figure not in b or figure not in a:
                continue
            print(f"{figure:>22}: {b[figure]:8.3f} -> {a[figure]:8.3f}")
    return figures


def per_round(
    walls: dict[str, list[float]], meta: dict[str, Any], args: argparse.Namespace
) -> dict[str, list[float]]:
    """Each ratio in every round apart: both of its runs met that round's load, so how far
    the rounds spread says how far a median of a noisy machine can be trusted."""
    w, k = args.workers, args.scale
    pairs = {
        "ratio library / floor": ("lib n0", "floor n0"),
        "ratio excluding child-owner": ("lib n0 no child-owner", "floor n0 no child-owner"),
        "engine replayed / floor": ("lib n0 engine replayed", "floor n0"),
        f"-n 0 / -n {w} at 1x": ("lib n0", f"lib n{w}"),
    }
    if meta.get("scaled_cells"):
        pairs[f"-n 0 / -n {w} at {k}x"] = (f"lib{k}x n0", f"lib{k}x n{w}")
        pairs[f"-n 0 / {w} apart at {k}x"] = (f"lib{k}x n0", f"lib{k}x {w} apart")
        pairs[f"plain xdist at {k}x"] = (f"busy{k}x n0", f"busy{k}x n{w}")
    out = {}
    print("per round (each ratio of two runs in the same round):")
    for name, (top, bottom) in pairs.items():
        ratios = [a / b for a, b in zip(walls[top], walls[bottom], strict=True)]
        out[name] = ratios
        spread = " ".join(f"{r:.2f}" for r in ratios)
        print(f"  {name + ':':<30}median {statistics.median(ratios):.2f}x  ({spread})")
    return out


def cpu_figures(cpu: dict[str, list[float]], steals: list[float]) -> dict[str, Any]:
    """CPU seconds beside the wall ratio: a single-process run's CPU time does not count
    what the hypervisor stole (this VM's steal swings from 0 to a third of the machine),
    so the CPU ratio is the steadier figure; the wall ratio is the target's."""
    pairs = {
        "ratio library / floor": ("lib n0", "floor n0"),
        "ratio excluding child-owner": ("lib n0 no child-owner", "floor n0 no child-owner"),
    }
    out: dict[str, Any] = {"seconds": {n: statistics.median(v) for n, v in cpu.items()}}
    print("CPU (user + system, median; the process and every child it reaped):")
    for name, (top, bottom) in pairs.items():
        ratios = [a / b for a, b in zip(cpu[top], cpu[bottom], strict=True)]
        out[name] = ratios
        print(
            f"  {name + ':':<30}{statistics.median(cpu[top]):6.2f} s / "
            f"{statistics.median(cpu[bottom]):.2f} s = {statistics.median(ratios):.2f}x "
            f"per round ({' '.join(f'{r:.2f}' for r in ratios)})"
        )
    if steals:
        out["steal"] = {"median": statistics.median(steals), "max": max(steals)}
        print(
            f"steal during the runs: median {100 * statistics.median(steals):.0f} %, "
            f"max {100 * max(steals):.0f} % of the machine (the hypervisor's; 0 on a quiet host)"
        )
    return out


def report(
    meta: dict[str, Any],
    med: dict[str, float],
    peak: dict[str, int],
    engine: list[dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    cells, child, w = meta["cells"], meta["child"], args.workers
    say = print
    out: dict[str, Any] = {"cells": cells, "child_owner_cells": child, "wall": med}
    ratio = med["lib n0"] / med["floor n0"]
    ratio_self = med["lib n0 no child-owner"] / med["floor n0 no child-owner"]
    say(f"library: {cells} cells ({child} child-owner)")
    say(
        f"pytest cases -n 0:           {med['lib n0']:7.2f} s  "
        f"{1e3 * med['lib n0'] / cells:.3f} ms/cell"
    )
    say(
        f"bare-item floor, same size:  {med['floor n0']:7.2f} s  "
        f"{1e3 * med['floor n0'] / cells:.3f} ms/item"
    )
    say(f"ratio library / floor:       {ratio:7.2f}x  (target <= 1.5x)")
    say(
        f"excluding child-owner cells: {ratio_self:7.2f}x  ({med['lib n0 no child-owner']:.2f} s "
        f"against {med['floor n0 no child-owner']:.2f} s for {cells - child} items)"
    )
    replayed = med["lib n0 engine replayed"]
    say(
        f"engine replayed (records):   {replayed:7.2f} s  = {replayed / med['floor n0']:.2f}x the "
        "floor: a cell's pytest side against a bare item"
    )
    say(
        f"the engine's share:          {(med['lib n0'] - replayed) / med['floor n0']:7.2f}x  "
        "of the ratio (library minus replayed, over the floor)"
    )
    out["ratio_replayed"] = replayed / med["floor n0"]
    per = {
        kind: statistics.median(x["times"][kind] / max(1, x["counts"][kind]) for x in engine)
        for kind in ("self", "child")
    }
    total = statistics.median(
        sum(x["times"].values()) / max(1, sum(x["counts"].values())) for x in engine
    )
    say(
        f"engine without pytest:       {1e3 * total:7.3f} ms/cell (self-owned "
        f"{1e3 * per['self']:.3f}, child-owner {1e3 * per['child']:.3f})"
    )
    speed1 = med["lib n0"] / med[f"lib n{w}"]
    say(f"-n 0 / -n {w} at 1x:           {speed1:7.2f}x  ({med[f'lib n{w}']:.2f} s with -n {w})")
    kb = peak["lib n0"] / cells
    say(f"peak RSS -n 0 at 1x:         {peak['lib n0'] / 1024:7.1f} MB = {kb:.1f} KB/cell")
    out.update(
        wall_lib_n0=med["lib n0"],
        ratio=ratio,
        ratio_no_child=ratio_self,
        engine_ms=1e3 * total,
        engine_kind_ms={k: 1e3 * v for k, v in per.items()},
        xdist_speedup_1x=speed1,
        rss_kb_per_cell=kb,
    )
    scaled = meta.get("scaled_cells", 0)
    k = args.scale
    if scaled:
        speedk = med[f"lib{k}x n0"] / med[f"lib{k}x n{w}"]
        growth = (med[f"lib{k}x n0"] / scaled) / (med["lib n0"] / cells)
        extra = (peak[f"lib{k}x n0"] - peak["lib n0"]) / (scaled - cells)
        say(
            f"-n 0 / -n {w} at {k}x:           {speedk:7.2f}x  ({med[f'lib{k}x n0']:.2f} s / "
            f"{med[f'lib{k}x n{w}']:.2f} s)  (target >= 1.5x)"
        )
        apart = med[f"lib{k}x n0"] / med[f"lib{k}x {w} apart"]
        say(
            f"-n 0 / {w} apart at {k}x:        {apart:7.2f}x  ({med[f'lib{k}x {w} apart']:.2f} s: "
            f"the cells in {w} independent -n 0 processes at once, no controller; the most "
            f"-n {w} could gain here. -n {w} reached {speedk / apart:.0%} of it)"
        )
        say(f"per-cell cost {k}x / 1x:       {growth:7.2f}   (target <= 1.10)")
        say(
            f"peak RSS -n 0 at {k}x:         {peak[f'lib{k}x n0'] / 1024:7.1f} MB; "
            f"{extra:.1f} KB per extra cell"
        )
        out.update(
            xdist_speedup_kx=speedk,
            growth=growth,
            rss_kb_per_extra_cell=extra,
            apart_speedup_kx=apart,
        )
        busy = med[f"busy{k}x n0"] / med[f"busy{k}x n{w}"]
        say(
            f"plain xdist, same weight:    {busy:7.2f}x  -n 0 / -n {w} on {scaled} bare items "
            f"each spending {meta['busy_ms']:.3f} ms of CPU ({med[f'busy{k}x n0']:.2f} s / "
            f"{med[f'busy{k}x n{w}']:.2f} s): what pytest-xdist itself gains here at this weight"
        )
        out["xdist_speedup_busy"] = busy
    for label, name, n in (("1x", "meter1.json", cells), (f"{k}x", "meterK.json", scaled)):
        meter = meta["tmp"] / name
        if not meter.exists() or not n:
            continue
        m = json.loads(meter.read_text())
        msgs, size = sum(m["messages"].values()), sum(m["bytes"].values())
        reports = m["messages"].get("testreport", 0)
        kinds = ", ".join(f"{kind} {count / n:.2f}" for kind, count in m["messages"].items())
        say(
            f"xdist at {label}: {msgs / n:.2f} messages/cell ({kinds}), {size / n:.0f} "
            f"bytes/cell ({m['bytes'].get('testreport', 0) / max(1, reports):.0f} per testreport "
            f"message: it may carry a bundle of cells); setup/teardown reports with "
            "user_properties: "
            f"{m['side'].get('with_user_properties', 0)}, with a record: "
            f"{m['side'].get('with_record', 0)}"
        )
        out[f"xdist_{label}"] = {"messages_per_cell": msgs / n, "bytes_per_cell": size / n, **m}
    return out


if __name__ == "__main__":
    main()
