"""Command line: python -m pytest_bindconform {table,merge,measure} ...

Exit codes: 0 success, 1 the command ran and found a problem, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from . import cases, measure, tables
from .host import fingerprint
from .report import cli as report_cli
from .yamlsrc import CaseFileError


def _measure(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_bindconform", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser(
        "measure", help="run a grid on this host and print a measured expectation block"
    )
    m.add_argument("case_file")
    m.add_argument("--oracle", required=True, help="oracle id to label the block with")
    m.add_argument("--profile", default=None, help="only cells of this profile")
    m.set_defaults(func=_measure)
    tables.register(sub)
    report_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except CaseFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
