"""Are two runs' results the same, cell for cell? (a speed change must not change a verdict)

Compares two JSON host reports (--bindconform-json) on what a run decides: the set of
cell ids, and per cell the observed outcome, the receiver of a delivery probe, the
verdict of every oracle, the gate, the status, and the description (expectations and
planned steps). Durations, ports and run ids differ between any two runs and are left out.

    python bench/compare_reports.py before.json after.json
    python bench/compare_reports.py --ignore-receiver before.json after.json

Exit status 0 when they agree, 1 with one line per difference otherwise. A load-balanced
delivery (SO_REUSEPORT) may pick another receiver on another run: --ignore-receiver
leaves the receiver, and the verdicts of oracles that name one, out of the comparison
and lists them separately.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def facts(result: dict[str, Any]) -> dict[str, Any]:
    """What a run decided about one cell."""
    observed = result.get("observed") or {}
    delivery = observed.get("delivery") or {}
    return {
        "outcome": observed.get("outcome"),
        "receiver": delivery.get("receiver"),
        "verdicts": result.get("verdicts", {}),
        "gate": result.get("gate"),
        "status": result.get("status"),
        "expected": {
            oid: (e.get("outcome"), tuple(e.get("flags", [])), e.get("receiver"))
            for oid, e in result.get("expected", {}).items()
        },
        "steps": result.get("scenario", {}).get("steps"),
    }


def compare(
    before: dict[str, Any], after: dict[str, Any], ignore_receiver: bool = False
) -> list[str]:
    """One line per difference (empty: the same results)."""
    old = {r["id"]: facts(r) for r in before["results"]}
    new = {r["id"]: facts(r) for r in after["results"]}
    lines = [f"only in the first: {i}" for i in old if i not in new]
    lines += [f"only in the second: {i}" for i in new if i not in old]
    for cid in (i for i in old if i in new):
        a, b = old[cid], new[cid]
        for key in a:
            if a[key] == b[key] or ignore_receiver and key in ("receiver", "verdicts", "status"):
                continue
            lines.append(f"{cid}: {key} {a[key]!r} -> {b[key]!r}")
    return lines


def receiver_only(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Cells whose receiver (and with it a verdict or status) alone differs."""
    old = {r["id"]: facts(r) for r in before["results"]}
    out = []
    for r in after["results"]:
        a, b = old.get(r["id"]), facts(r)
        if a and (a["receiver"], a["verdicts"], a["status"]) != (
            b["receiver"],
            b["verdicts"],
            b["status"],
        ):
            out.append(
                f"{r['id']}: receiver {a['receiver']} -> {b['receiver']}, "
                f"status {a['status']} -> {b['status']}"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--ignore-receiver", action="store_true")
    args = parser.parse_args()
    before, after = (json.loads(p.read_text()) for p in (args.first, args.second))
    lines = compare(before, after, args.ignore_receiver)
    for line in lines:
        print(line)
    if args.ignore_receiver:
        for line in receiver_only(before, after):
            print(f"(receiver only) {line}")
    print(
        f"{len(before['results'])} and {len(after['results'])} cells: "
        + ("the same results" if not lines else f"{len(lines)} difference(s)")
    )
    sys.exit(1 if lines else 0)


if __name__ == "__main__":
    main()
