"""Run one pytest command in several folders at once, each an independent process with a
port range of its own: what N xdist workers could do at best on this machine.

bench_library.py times this beside `-n N` on the same cells, split in N folders of
equal weight. There is no controller, nothing crosses between the processes, and each
collects only its own share, so the wall time is a ceiling for `-n N`, measured under
the same load: on a VM two busy vCPUs may each run well below the speed of one alone.

    python bench/apart.py LOW-HIGH DIR [DIR ...] -- PYTEST-ARGS...

Exit status: the highest of the runs' (1 means some cell failed, a result).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pytest_bindconform.ports import parse_range, worker_slice


def split_ports(text: str, parts: int) -> list[str]:
    """LOW-HIGH cut into `parts` disjoint ranges, exactly as xdist workers get theirs."""
    low, high = parse_range(text)
    slices = (worker_slice(low, high, i, parts) for i in range(parts))
    return [f"{r.start}-{r.stop - 1}" for r in slices]


def main(argv: list[str]) -> int:
    if "--" not in argv or len(argv) < 3:
        raise SystemExit(__doc__)
    cut = argv.index("--")
    ports, folders, pytest_args = argv[0], argv[1:cut], argv[cut + 1 :]
    logs = [Path(folder) / "apart.out" for folder in folders]
    outs = [log.open("w") for log in logs]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pytest", *pytest_args, f"--bindconform-ports={span}"],
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        for folder, span, out in zip(folders, split_ports(ports, len(folders)), outs, strict=True)
    ]
    codes = [p.wait() for p in procs]
    for out in outs:
        out.close()
    for code, log in zip(codes, logs, strict=True):
        if code not in (0, 1):  # 1: some cell failed, which is a result
            print(f"{log.parent}: exit {code}\n{log.read_text()[-3000:]}", file=sys.stderr)
    return max(codes)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
