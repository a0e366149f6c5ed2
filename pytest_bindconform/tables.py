"""`python -m pytest_bindconform table ORACLE`: one oracle's expectations as its page prints them.

A reviewer holds the Markdown against the published table, cell for cell, so
the grid keeps the page's orientation, its merged cells and its header names
(Windows option names, whatever OS the oracle speaks for; the profile line says
how they translate). JSON gives one object per physical cell for tools.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import cases, library
from .model import ROLES, Cell, Oracle, SocketSpec, Suite
from .yamlsrc import CaseFileError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "table",
        help="print one oracle's expectations in its page's orientation",
        description="Print one oracle's grid in the orientation of its page (Markdown), or one "
        "JSON object per physical cell; --list shows every oracle with its provenance.",
    )
    p.add_argument("oracle", nargs="?", help="oracle id, e.g. ms-using-2003-same-user or linux")
    p.add_argument("--list", action="store_true", help="list the oracles with their provenance")
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.add_argument(
        "--cases",
        default=None,
        metavar="DIR",
        help="case directory (default: ./cases if there is one, else the library shipped "
        "with pytest-bindconform)",
    )
    p.add_argument("--suite", default=None, help="only this suite id")
    p.set_defaults(func=run)


def load_all(root: Path) -> tuple[list[Suite], list[str]]:
    """Every suite under root; a broken file is reported, the others still load."""
    suites, problems = [], []
    for path in cases.discover(root):
        try:
            suites.append(cases.load_suite(path))
        except CaseFileError as exc:
            problems.append(str(exc))
    return suites, problems


def run(args: argparse.Namespace) -> int:
    root = Path(args.cases or ("cases" if Path("cases").is_dir() else library.directory()))
    if not root.is_dir():
        print(f"--cases {root}: no such directory", file=sys.stderr)
        return 2
    suites, problems = load_all(root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.suite:
        suites = [s for s in suites if s.id == args.suite]
        if not suites:
            print(f"no suite {args.suite!r} under {root}", file=sys.stderr)
            return 2
    if args.list:
        entries = listing(suites)
        print(json.dumps(entries, indent=2) if args.format == "json" else listing_markdown(entries))
        return 2 if problems else 0
    if not args.oracle:
        print("name an oracle, or use --list to see them", file=sys.stderr)
        return 2
    known = sorted({oid for s in suites for oid in s.oracles})
    holding = [s for s in suites if args.oracle in s.oracles]
    if not holding:
        close = difflib.get_close_matches(args.oracle, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        print(f"unknown oracle {args.oracle!r}{hint} (known: {', '.join(known)})", file=sys.stderr)
        return 2
    if args.format == "json":
        rows = [row for s in holding for row in cell_objects(s, args.oracle)]
        print(json.dumps(rows, indent=1))
    else:
        print("\n\n".join(suite_markdown(s, args.oracle) for s in holding))
    return 2 if problems else 0


# -- what a cell says, in the page's words ------------------------------------


def option_name(spec: SocketSpec, suite: Suite, profile: str | None) -> str:
    """Options in the page's (Windows) names: roles go through the profile's Windows column."""
    names: list[str] = []
    for item in spec.options:
        if item in ROLES:
            names += suite.profiles[profile].windows[item] if profile else ()
        else:
            names.append(item)
    return "+".join(dict.fromkeys(names)) or "default"


def resolved_name(spec: SocketSpec, suite: Suite, profile: str | None, os_family: str) -> str:
    """The options the socket really sets on os_family under the profile ('' for none)."""
    names: list[str] = []
    for item in spec.options:
        if item not in ROLES:
            names.append(item)
        elif profile:
            names += suite.profiles[profile].resolve(item, os_family)
    return "+".join(dict.fromkeys(names))


def address_name(spec: SocketSpec) -> str:
    if spec.v6only is None:
        return spec.address
    return f"{spec.address} {'v6only' if spec.v6only else 'dual-stack'}"


def pairwise(cell: Cell) -> bool:
    """A table row is one socket next to another: a one-socket cell (a bind of a multicast
    group address) is no row of it."""
    return len(cell.sockets) >= 2


def bind_order(cell: Cell) -> list[SocketSpec]:
    """The sockets in the order the cell binds them (some cases have only one)."""
    order = [s.socket for s in cell.steps if s.call == "bind"]
    order += [s.name for s in cell.sockets if s.name not in order]
    return [cell.socket(name) for name in dict.fromkeys(order)]


def ordered_sockets(cell: Cell) -> tuple[SocketSpec, SocketSpec]:
    """(first, second): the sockets in the order the cell binds them."""
    first, second = bind_order(cell)[:2]
    return first, second


def plain_variant(cell: Cell) -> str:
    """The variant key without its profile prefix, e.g. 'tcp4-bound'."""
    if cell.profile and cell.variant.startswith(cell.profile):
        return cell.variant[len(cell.profile) :].lstrip("-")
    return cell.variant


def cell_objects(suite: Suite, oracle_id: str) -> list[dict[str, Any]]:
    """One object per physical cell the oracle has an expectation for.

    An oracle valid under any profile (Windows) says the same of every profile's
    copy of a cell, so the copies fold into one object with profile 'any'.
    """
    oracle = suite.oracles[oracle_id]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for cell in suite.cells:
        exp = cell.expectation(oracle_id)
        if exp is None or not pairwise(cell):
            continue
        first, second = ordered_sockets(cell)
        family = (
            first.family if first.family == second.family else f"{first.family}/{second.family}"
        )
        row = {
            "oracle": oracle_id,
            "type": first.type,
            "family": family,
            "first_option": option_name(first, suite, cell.profile),
            "first_address": address_name(first),
            "second_option": option_name(second, suite, cell.profile),
            "second_address": address_name(second),
            "outcome": exp.outcome,
            "undefined_delivery": exp.undefined_delivery,
            "first_roles": "+".join(r for r in first.options if r in ROLES),
            "first_resolved": resolved_name(first, suite, cell.profile, oracle.os),
            "second_roles": "+".join(r for r in second.options if r in ROLES),
            "second_resolved": resolved_name(second, suite, cell.profile, oracle.os),
            "profile": "any" if oracle.profiles is None else cell.profile,
            "state": cell.state,
            "suite": suite.id,
        }
        key = json.dumps(row, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


# -- Markdown -----------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _address_label(spec: SocketSpec) -> str:
    addr = spec.address
    if addr in ("wildcard", "specific", "specific2"):
        label = addr.capitalize()
    elif addr.count(":") >= 2:
        label = f"[{addr}]"
    else:
        label = addr
    if spec.v6only is not None:
        label += " v6only" if spec.v6only else " dual-stack"
    return label


def _axis_label(specs: Iterable[SocketSpec], suite: Suite, profile: str | None) -> str:
    """A row or column header; a merged one names each merged option, as the page does."""
    specs = list(specs)
    opts = " or ".join(dict.fromkeys(option_name(s, suite, profile) for s in specs))
    return f"{opts}, {_address_label(specs[0])}"


def _token(tokens: list[str]) -> str:
    return tokens[0] if len(set(tokens)) == 1 else "|".join(tokens)


def _header(suite: Suite, oracle: Oracle) -> list[str]:
    lines = [f"## {oracle.id}: {suite.title}", "", f"- suite: `{suite.id}` ({suite.path})"]
    lines.append(f"- provenance: {oracle.provenance}")
    ref = next((r for r in suite.references if r.id == oracle.reference), None)
    if ref is not None:
        bits = [f"[{ref.title}]({ref.url})" if ref.url else ref.title]
        bits += [b for b in (ref.file, ref.revision, ref.section) if b]
        lines.append(f"- reference: {'; '.join(bits)}")
    lines.append(f"- applies: {_applies(oracle)}")
    if not suite.profiles:
        profiles = "none (raw option names)"
    else:
        profiles = "any" if oracle.profiles is None else ", ".join(oracle.profiles)
    lines.append(f"- profiles: {profiles}")
    for pid in oracle.profiles if oracle.os != "windows" and oracle.profiles else ():
        p = suite.profiles[pid]
        moves = ", ".join(
            f"{'+'.join(p.windows[r])} -> {'+'.join(p.posix[r]) or 'no option'} (role {r})"
            for r in ROLES
            if r != "default"
        )
        lines.append(f"  - {pid}: {moves}")
    if oracle.os == "windows" and suite.profiles:
        p = next(iter(suite.profiles.values()))
        said = ", ".join(f"{r} = {'+'.join(p.windows[r]) or 'no option'}" for r in ROLES)
        lines.append(
            f"  - the page's option names; the case file's roles (as the HTML report labels "
            f"them): {said}"
        )
    return lines


def _applies(oracle: Oracle) -> str:
    text = oracle.os
    if oracle.min_version:
        text += f" >= {oracle.min_version}"
    if oracle.max_version:
        text += f" <= {oracle.max_version}"
    return text


def suite_markdown(suite: Suite, oracle_id: str) -> str:
    oracle = suite.oracles[oracle_id]
    lines = _header(suite, oracle)
    cells = [c for c in suite.cells if c.expectation(oracle_id) is not None and pairwise(c)]
    if not cells:
        return "\n".join([*lines, "", "_no expectations in this suite_"])
    body = (
        _grid_markdown(suite, oracle, cells)
        if suite.grid
        else _cases_markdown(suite, oracle, cells)
    )
    return "\n".join([*lines, "", *body])


def _grid_markdown(suite: Suite, oracle: Oracle, cells: list[Cell]) -> list[str]:
    grid: Any = suite.grid
    lines = [f"Orientation: {grid['orientation']}", ""]
    n_rows, n_cols = len(grid["rows"]), len(grid["columns"])
    # (labels, table) -> where it applies; identical tables print once, like the page.
    groups: dict[tuple[Any, ...], list[str]] = {}
    by_group: dict[tuple[str | None, str], list[Cell]] = {}
    for cell in cells:
        profile = None if oracle.profiles is None else cell.profile
        by_group.setdefault((profile, plain_variant(cell)), []).append(cell)
    for (profile, variant), members in by_group.items():
        specs: dict[tuple[str, int], list[SocketSpec]] = {}
        tokens: list[list[list[str]]] = [[[] for _ in range(n_cols)] for _ in range(n_rows)]
        for cell in members:
            pos = cell.position
            if pos is None:
                continue
            exp = cell.expectation(oracle.id)
            if exp is None:
                continue
            tokens[pos.row][pos.column].append(exp.token)
            specs.setdefault(("row", pos.row), []).append(cell.socket(grid["row_socket"]))
            specs.setdefault(("col", pos.column), []).append(cell.socket(grid["column_socket"]))
        rows = tuple(
            _axis_label(specs[("row", r)], suite, members[0].profile) for r in range(n_rows)
        )
        cols = tuple(
            _axis_label(specs[("col", c)], suite, members[0].profile) for c in range(n_cols)
        )
        table = tuple(tuple(_token(t) for t in row) for row in tokens)
        where = f"profile {profile or 'any'}: {variant or 'all'}" if suite.profiles else variant
        groups.setdefault((rows, cols, table), []).append(where)
    for (rows, cols, table), wheres in groups.items():
        lines.append(f"### {'; '.join(_merge_wheres(wheres))}")
        lines.append("")
        corner = f"{grid['row_socket']} bind \\\\ {grid['column_socket']} bind"
        lines.append("| " + " | ".join([corner, *(_md(c) for c in cols)]) + " |")
        lines.append("|" + "---|" * (len(cols) + 1))
        for label, row in zip(rows, table, strict=True):
            lines.append("| " + " | ".join([_md(label), *(_md(t) for t in row)]) + " |")
        lines.append("")
    return lines


def _merge_wheres(wheres: list[str]) -> list[str]:
    """'profile p: v1', 'profile p: v2' -> 'profile p: v1, v2'."""
    merged: dict[str, list[str]] = {}
    for where in wheres:
        head, _, variant = where.rpartition(": ")
        merged.setdefault(head, []).append(variant)
    return [f"{head}: {', '.join(vs)}" if head else ", ".join(vs) for head, vs in merged.items()]


def _socket_text(spec: SocketSpec, suite: Suite, profile: str | None) -> str:
    return f"{spec.family} {option_name(spec, suite, profile)}, {_address_label(spec)}"


def _cases_markdown(suite: Suite, oracle: Oracle, cells: list[Cell]) -> list[str]:
    lines = [
        "| case | first bind | second bind | steps | variants | expected |",
        "|---|---|---|---|---|---|",
    ]
    by_case: dict[str, list[Cell]] = {}
    for cell in cells:
        by_case.setdefault(cell.key, []).append(cell)
    for key, members in by_case.items():
        first, *others = bind_order(members[0])
        variants = ", ".join(dict.fromkeys(_transport(c) for c in members))
        per_profile: dict[str, str] = {}
        for cell in members:
            exp = cell.expectation(oracle.id)
            if exp is not None:
                per_profile.setdefault(cell.profile or "any", exp.token)
        expected = (
            next(iter(per_profile.values()))
            if len(set(per_profile.values())) == 1
            else "; ".join(f"{p}: {t}" for p, t in per_profile.items())
        )
        profile = members[0].profile
        cols = [
            key,
            _socket_text(first, suite, profile),
            _socket_text(others[0], suite, profile) if others else "—",
            ", ".join(str(s) for s in members[0].steps),
            variants,
            expected,
        ]
        lines.append("| " + " | ".join(_md(c) for c in cols) + " |")
    return lines


def _transport(cell: Cell) -> str:
    first = bind_order(cell)[0]
    return "tcp" if first.type == "stream" else "udp"


# -- --list -------------------------------------------------------------------


def listing(suites: list[Suite]) -> list[dict[str, Any]]:
    """One entry per oracle id: its provenance in each suite that has it."""
    entries: dict[str, dict[str, Any]] = {}
    for suite in suites:
        for oid, oracle in suite.oracles.items():
            entry = entries.setdefault(oid, {"oracle": oid, "suites": []})
            ref = next((r for r in suite.references if r.id == oracle.reference), None)
            entry["suites"].append(
                {
                    "suite": suite.id,
                    "path": suite.path,
                    "kind": oracle.kind,
                    "source": oracle.source,
                    "table": oracle.table,
                    "reference": None
                    if ref is None
                    else {
                        "title": ref.title,
                        "url": ref.url,
                        "file": ref.file,
                        "revision": ref.revision,
                    },
                    "applies": _applies(oracle),
                    "profiles": "any" if oracle.profiles is None else list(oracle.profiles),
                    "cells": sum(1 for c in suite.cells if c.expectation(oid) is not None),
                }
            )
    return [entries[k] for k in sorted(entries)]


def listing_markdown(entries: list[dict[str, Any]]) -> str:
    lines = [
        "| oracle | kind | applies | suite | cells | provenance |",
        "|---|---|---|---|---|---|",
    ]
    for entry in entries:
        for s in entry["suites"]:
            source = s["source"] + (f", {s['table']}" if s["table"] else "")
            if s["reference"] and s["reference"]["url"]:
                source += f" <{s['reference']['url']}>"
            cols = [entry["oracle"], s["kind"], s["applies"], s["suite"], str(s["cells"]), source]
            lines.append("| " + " | ".join(_md(c) for c in cols) + " |")
    return "\n".join(lines)
