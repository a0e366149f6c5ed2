"""`merge`: python -m pytest_bindconform merge A.json B.json --json OUT --md OUT --html OUT."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import measure_report
from . import answers, html, markdown, model
from .book import write_atomic
from .merge import MergeError, acyclic, merge_files

NAMES = {"json": "JSON", "md": "Markdown", "html": "HTML"}


def register(sub: Any) -> None:
    m = sub.add_parser(
        "merge",
        help="merge host reports into one cross-host matrix",
        description="Merge JSON reports of several hosts into one matrix (rows: cells, columns: "
        "hosts), with the cells where hosts differ and where documented tables are wrong.",
    )
    m.add_argument("reports", nargs="+", metavar="REPORT.json", help="host reports to merge")
    for fmt in ("json", "md", "html"):
        m.add_argument(f"--{fmt}", metavar="OUT", help=f"write the merged {NAMES[fmt]} here")
    m.add_argument(
        "--measured",
        nargs="+",
        type=Path,
        default=[],
        metavar="DIR",
        help="list the measured expectation blocks (*.measured.yaml) found under DIR",
    )
    m.add_argument(
        "--simulated",
        action="store_true",
        help="test harness only: accept reports of --bindconform-simulate runs (the merged "
        "report is then labelled simulated in every output)",
    )
    m.set_defaults(func=_merge)


def _merge(args: argparse.Namespace) -> int:
    outputs = {
        fmt: Path(getattr(args, fmt)) for fmt in ("json", "md", "html") if getattr(args, fmt)
    }
    if not outputs:
        print("merge: nothing to write: give at least one of --json, --md, --html", file=sys.stderr)
        return 2
    try:
        merged = merge_files([Path(p) for p in args.reports], simulated=args.simulated)
    except MergeError as exc:
        print(f"merge: {exc}", file=sys.stderr)
        return 2
    if args.measured:
        merged["measured"] = measure_report.listing(args.measured)
    where = str(outputs.get("html") or outputs.get("json") or "")
    render = {
        "json": lambda: model.dumps(merged),
        "md": lambda: markdown.render_merged(
            merged, where, lead=answers.merged_markdown_lines(merged)
        ),
        "html": lambda: html.render_merged(merged, lead=answers.merged_html_fragment(merged)),
    }
    with acyclic():
        for fmt, path in outputs.items():
            write_atomic(path, render[fmt]())
    if merged.get("simulated"):
        print(f"SIMULATED ({merged['simulated']}): not a conformance result")
    print(
        f"merged {len(args.reports)} reports: {len(merged['hosts'])} hosts, "
        f"{len(merged['cells'])} cells, {len(merged['differences'])} differ between hosts, "
        f"errata at {len(merged['errata'])} grid positions; wrote "
        f"{', '.join(map(str, outputs.values()))}"
    )
    return 0
