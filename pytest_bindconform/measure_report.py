"""Measured expectation blocks from a host report already written, without re-running.

Why: the first CI run on Windows, macOS or FreeBSD is the first measurement
of those systems. Where the host disagrees with its gate the leg fails, and
these files turn what it observed into blocks a maintainer reviews and commits
as a measured oracle (docs/ci.md). One file per OS and suite, valid YAML: the
provenance (`measured`), the oracle to declare, the grid blocks or case lines,
and, as comments, every cell where the host disagreed with the gate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from . import cases, measure
from .model import Cell, Suite

SUFFIX = ".measured.yaml"
OBSERVED = ("pass", "fail", "ungated")  # the cell ran here and its outcome was recorded


class ReportError(Exception):
    pass


def host_reports(paths: list[Path]) -> list[Path]:
    """The files named, and every *.json directly in a directory named (a leg's reports/)."""
    found: list[Path] = []
    for path in paths:
        found += sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not found:
        raise ReportError(f"no JSON report in {', '.join(map(str, paths))}")
    return found


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: cannot read a report: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "host":
        raise ReportError(f"{path}: not a host report (kind must be 'host')")
    return doc


def _run_url() -> str:
    server, repo, run = (
        os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else ""


def _host_line(doc: dict[str, Any]) -> str:
    h = doc["run_info"]["host"]
    who = "privileged" if h["admin"] else "unprivileged"
    return (
        f"{h['os']} {h['os_release']} ({h['kernel']}, {h['machine']}), python {h['python']}, "
        f"{who}, isolation {doc['run_info']['isolation']}"
    )


class _Suite:
    """What the reports of one OS say about one suite."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self.by_name = {cell.name: cell for cell in suite.cells}
        self.outcomes: dict[Cell, dict[str, str]] = {}  # cell -> observed outcome -> report
        self.failed: list[str] = []
        self.gates: set[str] = set()
        self.hosts: list[str] = []
        self.reports: list[str] = []

    def add(self, path: Path, doc: dict[str, Any], results: list[dict[str, Any]]) -> None:
        self.reports.append(str(path))
        self.hosts.append(_host_line(doc))
        for r in results:
            cell = self.by_name.get(r["name"])
            if cell is None:
                raise ReportError(
                    f"{path}: cell {r['name']!r} is not in {self.suite.path}: the report comes "
                    "from other case files; run measure in the checkout that ran it"
                )
            self.gates.add(r["gate"])
            found = self.outcomes.setdefault(cell, {})
            got = r["observed"]["outcome"] if r["status"] in OBSERVED and r["observed"] else None
            if got is not None:
                found.setdefault(got, str(path))
            if r["status"] == "fail":
                want = r["expected"].get(r["gate"], {}).get("outcome", "?")
                self.failed.append(f"{r['name']}: gate {r['gate']} expects {want}, observed {got}")

    def seen(self) -> tuple[dict[Cell, str], list[str]]:
        """One outcome per cell; two reports that observed different ones make no claim."""
        seen, conflicts = {}, []
        for cell, found in self.outcomes.items():
            seen[cell] = next(iter(found)) if len(found) == 1 else "unknown"
            if len(found) > 1:
                conflicts.append(
                    f"{cell.name}: " + ", ".join(f"{o} in {p}" for o, p in found.items())
                )
        return seen, conflicts

    def text(self, os_name: str, oracle: str) -> str:
        seen, conflicts = self.seen()
        observed = sum(1 for v in seen.values() if v != "unknown")
        meta = {
            "os": os_name,
            "suite": self.suite.id,
            "case_file": self.suite.path,
            "oracle": oracle,
            "hosts": self.hosts,
            "reports": self.reports,
            "run": _run_url(),
            "gate": sorted(g for g in self.gates if g),
            "cells": len(seen),
            "observed": observed,
            "disagreed_with_gate": len(self.failed),
            "conflicting": len(conflicts),
        }
        where = f" by {meta['run']}" if meta["run"] else ""
        declare = {
            oracle: {
                "kind": "measured",
                "source": f"measured on {'; '.join(dict.fromkeys(self.hosts))}{where}",
                "applies": {"os": os_name},
            }
        }
        parts = [
            f"# Measured expectation blocks: what {os_name} observed for suite {self.suite.id}.",
            "# Review them against the documents; then add `oracles` to the case file's",
            "# `oracles:`, the `expect` blocks to its `grid.expect:` (the `cases` lines to each",
            "# case's `expect:`), narrow `applies` to what was measured, and commit (docs/ci.md).",
            yaml.safe_dump({"measured": meta, "oracles": declare}, sort_keys=False, width=1000),
        ]
        by_profile: dict[str | None, dict[Cell, str]] = {}
        for cell, outcome in seen.items():
            by_profile.setdefault(cell.profile, {})[cell] = outcome
        if self.suite.grid is not None:
            parts.append("expect:")
            for profile, of_profile in by_profile.items():
                grid = {c: o for c, o in of_profile.items() if c.position is not None}
                if grid:
                    parts.append(
                        measure.render(
                            oracle, profile, measure.blocks(measure.tables(self.suite, grid))
                        )
                    )
        if any(cell.position is None for cell in seen):
            parts += ["cases:", measure.case_lines(oracle, self.suite, seen, mapping=True)]
        for title, lines in (
            (f"disagreed with the gate ({len(self.failed)} cells)", self.failed),
            (f"observed differently by two reports, left unknown ({len(conflicts)})", conflicts),
        ):
            if lines:
                parts += [f"# {title}:", *(f"#   {line}" for line in lines)]
        return "\n".join(parts) + "\n"


def write(paths: list[Path], out_dir: Path, oracle: str | None = None) -> list[Path]:
    """One file per (OS, suite) of the reports; returns the files written."""
    groups: dict[tuple[str, str], _Suite] = {}
    loaded: dict[str, Suite] = {}
    for path in host_reports(paths):
        doc = _read(path)
        os_name = doc["run_info"]["host"]["os"]
        by_suite: dict[str, list[dict[str, Any]]] = {}
        for r in doc["results"]:
            by_suite.setdefault(r["suite"], []).append(r)
        for sid, results in by_suite.items():
            case_file = doc["suites"][sid]["path"]
            if case_file not in loaded:
                loaded[case_file] = cases.load_suite(case_file)
            groups.setdefault((os_name, sid), _Suite(loaded[case_file])).add(path, doc, results)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (os_name, sid), found in sorted(groups.items()):
        target = out_dir / f"{os_name}-{sid}{SUFFIX}"
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(
            found.text(os_name, oracle or f"{os_name}-measured"), encoding="utf-8", newline="\n"
        )
        os.replace(tmp, target)
        written.append(target)
    return written


def listing(directories: list[Path]) -> list[dict[str, Any]]:
    """What a merged report lists: every measured file under the directories, in short."""
    out = []
    for root in directories:
        for path in sorted(root.rglob(f"*{SUFFIX}")):
            meta = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("measured")
            if not isinstance(meta, dict):
                continue
            out.append(
                {
                    "file": path.relative_to(root).as_posix(),
                    **{k: meta.get(k) for k in ("os", "suite", "oracle", "hosts", "gate")},
                    **{k: meta.get(k, 0) for k in ("observed", "disagreed_with_gate")},
                }
            )
    return out
