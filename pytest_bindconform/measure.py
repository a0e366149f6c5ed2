"""Turn a real run of a grid into a 'measured' expectation block for a case file.

A measured oracle is a regression baseline with honest provenance: the blocks
this prints say which host they came from, and a reviewer commits them only
after reading them against the documents.
"""

from __future__ import annotations

import itertools
from typing import Any

from . import probe
from .host import Host
from .model import Cell, Suite
from .ports import PortAllocator, default_range, worker_slice
from .runner import Context, execute

Table = tuple[tuple[str, ...], ...]


def observe(
    suite: Suite,
    host: Host,
    profile: str | None,
    records: dict[Cell, dict[str, Any]] | None = None,
) -> dict[Cell, str]:
    lo, hi = default_range(host)
    ctx = Context(host, {}, PortAllocator(host, worker_slice(lo, hi, 0, 1)))
    seen: dict[Cell, str] = {}
    for cell in suite.cells:
        if profile is not None and cell.profile != profile:
            continue
        record = execute(cell, suite, ctx)
        if record["status"] == "error":
            raise RuntimeError(f"{cell.name}: {record['reason']}")
        seen[cell] = record["observed"]["outcome"] if record["observed"] else "unknown"
        if records is not None:
            records[cell] = record
    return seen


def tables(suite: Suite, seen: dict[Cell, str]) -> dict[tuple[tuple[str, str], ...], Table]:
    """One page-oriented table per variant; merged cells give 'X|Y' tokens."""
    grid: Any = suite.grid
    n_rows, n_cols = len(grid["rows"]), len(grid["columns"])
    by_variant: dict[tuple[tuple[str, str], ...], list[list[list[str]]]] = {}
    for cell, outcome in seen.items():
        if cell.position is None:
            continue
        key = cell.variant_fields
        table = by_variant.setdefault(key, [[[] for _ in range(n_cols)] for _ in range(n_rows)])
        table[cell.position.row][cell.position.column].append(outcome)
    out = {}
    for key, table in by_variant.items():
        out[key] = tuple(tuple(_token(parts) for parts in row) for row in table)
    return out


def delivery_text(records: dict[Cell, dict[str, Any]]) -> str:
    """Who received the traffic in each cell where several sockets could, as YAML comments
    (the block above stays pasteable); per-socket counts, as the delivery probe saw them."""
    lines = []
    for cell, record in records.items():
        delivery = (record.get("observed") or {}).get("delivery")
        if delivery:
            counts = ", ".join(f"{n}: {k}" for n, k in delivery["received"].items())
            lines.append(
                f"    # {cell.name}: received by {delivery['receiver']} ({delivery['sent']} sent "
                f"to {delivery['target']}; {counts})"
            )
    if not lines:
        return "    # who received the traffic: no cell left two sockets able to receive it"
    return "\n".join(["    # who received the traffic:", *lines])


def _token(parts: list[str]) -> str:
    if not parts:
        return "unknown"
    parts = ["unknown" if p in (probe.NOT_RUN, probe.OTHER) else p for p in parts]
    return parts[0] if len(set(parts)) == 1 else "|".join(parts)


def blocks(found: dict[tuple[tuple[str, str], ...], Table]) -> list[tuple[dict[str, str], Table]]:
    """Fewest, non-overlapping 'where' blocks that reproduce every variant's table."""
    variants = [dict(k) for k in found]
    axes = sorted({a for v in variants for a in v})
    left = {k: t for k, t in found.items()}
    out: list[tuple[dict[str, str], Table]] = []
    for size in range(len(axes) + 1):
        for chosen in itertools.combinations(axes, size):
            values = {tuple((a, dict(k)[a]) for a in chosen) for k in left}
            for where_items in sorted(values):
                where = dict(where_items)
                match = [k for k in found if all(dict(k).get(a) == v for a, v in where.items())]
                if not match or any(k not in left for k in match):
                    continue
                if len({found[k] for k in match}) == 1:
                    out.append((where, found[match[0]]))
                    for k in match:
                        del left[k]
    return out


def render(oracle: str, profile: str | None, result: list[tuple[dict[str, str], Table]]) -> str:
    lines = []
    for where, table in result:
        lines.append(f"    - oracle: {oracle}")
        if profile:
            lines.append(f"      profile: {profile}")
        if where:
            inner = ", ".join(f"{k}: {v}" for k, v in sorted(where.items()))
            lines.append(f"      where: {{{inner}}}")
        lines.append("      table:")
        width = max(len(t) for row in table for t in row)
        for row in table:
            cells = [(t + ",").ljust(width + 2) for t in row[:-1]] + [row[-1]]
            lines.append("        - [" + "".join(cells) + "]")
    return "\n".join(lines)


def expect_text(oracle: str, profile: str | None, suite: Suite, seen: dict[Cell, str]) -> str:
    """What a reviewer pastes into the case file: grid blocks and/or per-case lines."""
    parts = []
    if suite.grid is not None:
        parts.append(render(oracle, profile, blocks(tables(suite, seen))))
    if any(cell.position is None for cell in seen):
        parts.append(case_lines(oracle, suite, seen))
    return "\n".join(parts)


def case_lines(oracle: str, suite: Suite, seen: dict[Cell, str], mapping: bool = False) -> str:
    """For `cases:` suites: one `expect:` line per case, profiles folded when equal; with
    mapping, `key: {expect: ...}` entries of one YAML mapping instead.

    A case whose variants disagree cannot take one value: it is flagged for the
    reviewer to split, never averaged.
    """
    by_case: dict[str, dict[str | None, set[str]]] = {}
    for cell, outcome in seen.items():
        if cell.position is None:
            by_case.setdefault(cell.key, {}).setdefault(cell.profile, set()).add(outcome)
    lines = []
    form = "  {key}: {{expect: {value}}}" if mapping else "  {key}:  expect: {value}"
    for key, per_profile in by_case.items():
        if any(len(found) > 1 for found in per_profile.values()):
            detail = "; ".join(f"{p}: {sorted(v)}" for p, v in per_profile.items())
            lines.append(f"  # {key}: variants disagree ({detail}): split the case")
            continue
        values = {p: next(iter(v)) for p, v in per_profile.items()}
        if len(set(values.values())) == 1:
            value = f"{{{oracle}: {next(iter(values.values()))}}}"
        else:
            inner = ", ".join(f"{p}: {v}" for p, v in values.items())
            value = f"{{{oracle}: {{{inner}}}}}"
        lines.append(form.format(key=key, value=value))
    return "\n".join(lines)
