"""Time the goal suites add to `pytest cases`: runs with and without cases/goal-*.bind.yaml,
interleaved on one machine (so load drifts hit both), N rounds each; prints each run's
wall time, the medians and the difference.

    python bench/bench_goals.py [ROUNDS] [-- extra pytest args, e.g. -n 2]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = [sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:cacheprovider"]


def once(extra: list[str], goals: bool) -> float:
    args = BASE + extra + ([] if goals else ["--ignore-glob=*goal-*.bind.yaml"])
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    rounds = int(argv[0]) if argv and argv[0] != "--" else 3
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(rounds):
        for goals in (False, True) if i % 2 == 0 else (True, False):
            times[goals].append(once(extra, goals))
            print(
                f"round {i + 1}: {'with' if goals else 'without'} goal suites "
                f"{times[goals][-1]:.2f} s",
                flush=True,
            )
    without, with_ = statistics.median(times[False]), statistics.median(times[True])
    print(
        f"median without {without:.2f} s, with {with_:.2f} s: the goal suites add "
        f"{with_ - without:.2f} s ({100 * (with_ - without) / without:.0f} %) "
        f"over {rounds} interleaved rounds, pytest args {extra or 'none'}"
    )


if __name__ == "__main__":
    main()
