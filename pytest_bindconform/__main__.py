"""Command line: python -m pytest_bindconform {table,merge,measure} ...

Exit codes: 0 success, 1 the command ran and found a problem, 2 bad usage or input,
141 the reader of the output went away (`... | head`), as for any tool killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import cases, measure, measure_report, tables
from .host import fingerprint
from .report import cli as report_cli
from .yamlsrc import CaseFileError


def _measure(args: argparse.Namespace) -> int:
    if args.from_report:
        if args.case_file or not args.out:
            print("measure: --from-report takes --out DIR and no case file", file=sys.stderr)
            return 2
        try:
            written = measure_report.write(args.from_report, args.out, args.oracle)
        except measure_report.ReportError as exc:
            print(f"measure: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {len(written)} measured files to {args.out}")
        return 0
    if not args.case_file or not args.oracle:
        print("measure: give a case file and --oracle (or --from-report)", file=sys.stderr)
        return 2
    suite = cases.load_suite(args.case_file)
    host = fingerprint()
    records: dict[Any, dict[str, Any]] = {}
    seen = measure.observe(suite, host, args.profile, records)
    print(
        f"    # measured on {host.os} {host.os_release} ({host.kernel}, {host.machine}), "
        f"python {host.python}, addresses {host.addresses}"
    )
    print(measure.expect_text(args.oracle, args.profile, suite, seen))
    print(measure.delivery_text(records))
    return 0


def prog() -> str:
    """The name the user typed: `bindconform` (the console script) or the module form."""
    name = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    return "bindconform" if name == "bindconform" else "python -m pytest_bindconform"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog(),
        description="What bind() does on this OS: print an oracle's table, measure a grid, "
        "merge host reports. Exit codes: 0 success, 1 the command ran and found a problem, "
        "2 bad usage or input.",
        epilog="Run the conformance suite itself with pytest: pytest --bindconform-library",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser(
        "measure",
        help="run a grid on this host and print a measured expectation block, or write the "
        "blocks of a report already written (--from-report)",
    )
    m.add_argument("case_file", nargs="?")
    m.add_argument(
        "--oracle", help="oracle id to label the block with (--from-report: <os>-measured)"
    )
    m.add_argument("--profile", default=None, help="only cells of this profile")
    m.add_argument(
        "--from-report",
        nargs="+",
        type=Path,
        metavar="REPORT",
        help="host reports (or directories of them) to turn into blocks, without running a cell",
    )
    m.add_argument("--out", type=Path, metavar="DIR", help="where --from-report writes its files")
    m.set_defaults(func=_measure)
    tables.register(sub)
    report_cli.register(sub)
    return parser


SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for `yes | head`


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except CaseFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    except BrokenPipeError:
        _stdout_to_devnull()
        return SIGPIPE_EXIT
    return code


def _stdout_to_devnull() -> None:
    """The reader is gone: what is still buffered goes nowhere, so the interpreter's own
    flush at exit raises nothing either (the recipe of the 'signal' module's docs)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
