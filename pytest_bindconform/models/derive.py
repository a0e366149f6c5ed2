"""python -m pytest_bindconform.models.derive CASE_FILE --oracle freebsd --profile reuseport

Prints expectation blocks in exactly the format of `python -m pytest_bindconform
measure`, with outcomes predicted by the named OS's model instead of observed:
the raw material of a 'derived, not run' oracle. A reviewer commits a block only
after reading it against the sources the model cites. Cells needing what the OS
lacks (an option it does not define, a call no model knows) get 'unknown'.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import cases, measure
from ..model import Cell, Suite
from ..yamlsrc import CaseFileError
from . import OS_FAMILIES
from .cells import predict_cell


def derive(suite: Suite, os_family: str, profile: str | None) -> dict[Cell, str]:
    """Every cell of the profile with its model prediction (measure.observe's shape)."""
    return {
        cell: predict_cell(os_family, cell, suite.profiles.get(cell.profile or ""))
        for cell in suite.cells
        if profile is None or cell.profile == profile
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_bindconform.models.derive", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("case_file")
    parser.add_argument("--oracle", required=True, help="oracle id to label the block with")
    parser.add_argument(
        "--os",
        choices=OS_FAMILIES,
        default=None,
        help="model to run (default: the oracle id, e.g. freebsd)",
    )
    parser.add_argument("--profile", default=None, help="only cells of this profile")
    args = parser.parse_args(argv)
    os_family = args.os or args.oracle
    if os_family not in OS_FAMILIES:
        parser.error(f"no model named {os_family!r}: pass --os ({', '.join(OS_FAMILIES)})")
    try:
        suite = cases.load_suite(args.case_file)
    except CaseFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.profile is not None and args.profile not in suite.profiles:
        print(
            f"{args.case_file}: no profile {args.profile!r}; the suite declares: "
            f"{', '.join(suite.profiles) or 'none'}",
            file=sys.stderr,
        )
        return 2
    seen = derive(suite, os_family, args.profile)
    print(
        f"    # derived by the {os_family} model (pytest_bindconform/models/{os_family}.py "
        "and the rules it cites), not run"
    )
    print(measure.expect_text(args.oracle, args.profile, suite, seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
