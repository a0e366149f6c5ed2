"""The merged matrix at scale: N host reports merged, figures side by side.

Builds N host reports from one real run of cases/ on this host (bench/hosts.py
varies OS, Python, privilege and outcomes per host), merges 2, 4, 12 and 24 of
them with `python -m pytest_bindconform merge` in a fresh process each, and
prints the time, the peak RSS, the sizes of the merged JSON, HTML and Markdown,
the HTML's DOM node count, its load time in headless Chromium (when one is on
PATH or named by $CHROMIUM), and the growth of each figure per host from the
smallest merge to each larger one (1.0 = linear).

    /work/nsrun .venv/bin/python bench/bench_merge.py                # runs cases/ first
    .venv/bin/python bench/bench_merge.py --report reports/linux.json  # reuse a host report

The machine may be shared: "seconds" is wall time, "CPU s" what the merge itself used.

Targets (issue 13): 12 hosts merge in <= 10 s and <= 400 MB, JSON <= 25 MB,
HTML <= 5 MB and interactive in <= 1 s, Markdown <= 1 MiB, growth <= linear.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosts import made_up  # noqa: E402

from pytest_bindconform.report.merge import acyclic  # noqa: E402
from pytest_bindconform.report.model import dumps  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZES = (2, 4, 12, 24)
CHILD = (
    "import resource, sys\n"
    "from pytest_bindconform.__main__ import main\n"
    "code = main(sys.argv[1:])\n"
    "use = resource.getrusage(resource.RUSAGE_SELF)\n"
    "print('CPU', use.ru_utime + use.ru_stime, 'RSS', use.ru_maxrss)\n"
    "sys.exit(code)\n"
)


def real_report(where: Path) -> Path:
    out = where / "host.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "cases", "-q", "-n", "2", "-p", "no:cacheprovider",
         "--bindconform-json", str(out)],
        cwd=ROOT, check=False, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    if not out.exists():
        sys.exit("the run of cases/ wrote no report")
    return out


class Nodes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.count += 1


def browser() -> str | None:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


PROBE = (  # added to a copy of the page only: the report itself runs no script
    "<script>addEventListener('load',()=>setTimeout(()=>{const t=performance.timing;"
    "document.title='T '+[t.domInteractive-t.navigationStart,t.loadEventEnd-t.navigationStart]"
    "},0))</script>"
)


def load_seconds(page: Path, scratch: Path) -> tuple[float, float] | None:
    """(interactive, loaded) in headless Chromium, from the page's own navigation timing:
    the best of three, on a copy of the page with a timing probe and no CSP."""
    exe = browser()
    if exe is None:
        return None
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text("utf-8"))
    probe = scratch / "probe.html"
    probe.write_text(text.replace("</head>", PROBE + "</head>", 1), encoding="utf-8")
    best: tuple[float, float] | None = None
    for _ in range(3):
        done = subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={scratch / 'profile'}", "--virtual-time-budget=30000",
             "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        found = re.search(r"<title>T (\d+),(\d+)</title>", done.stdout)
        if found:
            pair = (int(found.group(1)) / 1000, int(found.group(2)) / 1000)
            best = pair if best is None or pair < best else best
    return best


def parsers(report: Path) -> str:
    """json.loads against orjson.loads on one host report, side by side (best of 3, the
    cycle collector paused as merge pauses it)."""
    text = report.read_text(encoding="utf-8")
    found = {"json": json.loads}
    with contextlib.suppress(ImportError):
        import orjson

        found["orjson"] = orjson.loads
    best = dict.fromkeys(found, float("inf"))
    with acyclic():
        for _ in range(3):
            for name, loads in found.items():
                start = time.process_time()
                loads(text)
                best[name] = min(best[name], time.process_time() - start)
    return ", ".join(f"{name} {s:.3f}" for name, s in best.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", type=Path, help="a host report to build from (default: run)")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        scratch = Path(tmp)
        source = args.report or real_report(scratch)
        real = json.loads(source.read_text(encoding="utf-8"))
        print(f"from {source}: {len(real['results'])} cells per host")
        print("parsing one host report, CPU s:", parsers(source))
        inputs = []
        for n in range(max(sizes)):
            path = scratch / f"host{n:02d}.json"
            path.write_text(dumps(made_up(real, n)), encoding="utf-8")
            inputs.append(path)
        head = (
            "hosts",
            "seconds",
            "CPU s",
            "RSS MB",
            "JSON MB",
            "HTML MB",
            "MD KiB",
            "DOM nodes",
            "ready s",
            "load s",
        )
        print(" ".join(f"{h:>10}" for h in head))
        rows = []
        for n in sizes:
            out = scratch / f"m{n}"
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", CHILD, "merge", *map(str, inputs[:n]),
                 "--json", f"{out}.json", "--html", f"{out}.html", "--md", f"{out}.md"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            if done.returncode:
                sys.exit(done.stderr)
            cpu_text, rss_text = done.stdout.rsplit("CPU", 1)[1].split("RSS")
            rss, cpu = int(rss_text) / 1024, float(cpu_text)
            page = Path(f"{out}.html").read_text(encoding="utf-8")
            nodes = Nodes()
            nodes.feed(page)
            load = load_seconds(Path(f"{out}.html"), scratch)
            row = (
                n, seconds, cpu, rss, Path(f"{out}.json").stat().st_size / 1e6,
                len(page.encode()) / 1e6, Path(f"{out}.md").stat().st_size / 1024,
                nodes.count, *(load or ("-", "-")),
            )  # fmt: skip
            rows.append(row)
            print(" ".join(f"{v:>10.2f}" if isinstance(v, float) else f"{v!s:>10}" for v in row))
        base = rows[0]
        print("\ngrowth per host against the smallest merge (1.0 = linear, < 1 = sublinear):")
        for row in rows[1:]:
            k = row[0] / base[0]
            ratios = [
                f"{head[i]} {row[i] / base[i] / k:.2f}"
                for i in range(1, 10)
                if isinstance(base[i], int | float) and base[i]
            ]
            print(f"  {row[0]:>3} hosts: " + ", ".join(ratios))


if __name__ == "__main__":
    main()
