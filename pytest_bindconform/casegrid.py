"""A grid suite: the published table it encodes (rows: one socket's settings, columns:
the other's), each cell per profile and variant, into Cells, with every error the
builder (cases.Builder) collects."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from .caseparts import (
    SOCKET_DEFAULTS,
    alternatives,
    expectation,
    label,
    pick,
    profiles_hint,
    socket_spec,
    suggest,
    token,
)
from .model import Cell, Expectation, GridPosition, Oracle, SocketSpec, Step, Suite
from .yamlsrc import Path, excerpt

if TYPE_CHECKING:
    from .cases import Builder

STATE_STEPS: dict[str, tuple[Step, ...]] = {
    "bound": (Step("bind", "first"),),
    "listening": (Step("bind", "first"), Step("listen", "first")),
    # listener closed while the connection it accepted is still ESTABLISHED
    "closed-established": (
        Step("bind", "first"),
        Step("listen", "first"),
        Step("connect", "peer", "first"),
        Step("accept", "first"),
        Step("close", "first"),
    ),
    # the server closes the accepted connection first (active close), the peer reads the
    # FIN and closes too: the server side sits in TIME_WAIT on the port; then the listener goes
    "time-wait": (
        Step("bind", "first"),
        Step("listen", "first"),
        Step("connect", "peer", "first"),
        Step("accept", "first"),
        Step("close", "first.conn"),
        Step("recv", "peer"),
        Step("close", "peer"),
        Step("close", "first"),
    ),
}
"""Steps that put the first socket of a grid cell in its state before the step under test."""


def grid_cells(b: Builder, grid: dict[str, Any], suite: Suite) -> list[Cell]:
    """Every cell of the table, per profile and variant (a merged row or column stands for
    several); suite.grid keeps the table's shape for the reports."""
    base: Path = ("grid",)
    rows, cols = grid["rows"], grid["columns"]
    if rows["socket"] == cols["socket"]:
        b.error((*base, "columns", "socket"), "rows and columns must describe different sockets")
        return []
    n_rows, n_cols = len(rows["values"]), len(cols["values"])
    variants = b.variants(grid.get("variants"))
    for axis in ("rows", "columns"):
        for i, value in enumerate(grid[axis]["values"]):
            if "option" in value and "options" in value:
                b.error((*base, axis, "values", i), "use 'option' or 'options', not both")
            if "port" in value:
                b.error(
                    (*base, axis, "values", i, "port"),
                    "a grid's two sockets share the cell's port; a socket's own 'port' "
                    "is for individual cases (under 'cases')",
                    key=True,
                )
            for key in ("option", "options"):
                if key in value:
                    opts = value[key] if isinstance(value[key], list) else [value[key]]
                    b.check_options(opts, (*base, axis, "values", i, key), suite)
    blocks = _blocks(b, grid, suite, n_rows, n_cols, variants)
    then = [
        b.parse_step(s, {"first", "second"}, (*base, "then", i))
        for i, s in enumerate(grid.get("then", []))
    ]
    suite.grid = {
        "orientation": grid.get(
            "orientation",
            f"rows: {rows['socket']} socket; columns: {cols['socket']} socket",
        ),
        "row_socket": rows["socket"],
        "column_socket": cols["socket"],
        "rows": [label(v) for v in rows["values"]],
        "columns": [label(v) for v in cols["values"]],
        "variants": [b.variant_key(None, v) for v in variants] or [""],
    }
    cells = []
    profiles: list[str | None] = list(suite.profiles) or [None]
    merged = sum(len(alternatives(v)) for v in rows["values"]) * sum(
        len(alternatives(v)) for v in cols["values"]
    )
    if not b.room_for(len(profiles) * max(1, len(variants)) * merged, base):
        return []
    for profile, variant in itertools.product(profiles, variants or [{}]):
        for r, c in itertools.product(range(n_rows), range(n_cols)):
            exps = []
            line = b.line((*base, "rows", "values", r))
            for b_index, (block, oracle) in enumerate(blocks):
                if not _block_applies(b, block, oracle, profile, variant):
                    continue
                token = block["table"][r][c]
                n_alt = len(alternatives(rows["values"][r])) * len(alternatives(cols["values"][c]))
                if "|" in token and token.count("|") + 1 != n_alt:
                    b.error(
                        (*base, "expect", b_index, "table", r, c),
                        f"{excerpt(token)} gives {token.count('|') + 1} outcomes but this "
                        f"cell merges {n_alt} option sets",
                    )
                    continue
                exps.append(
                    expectation(oracle.id, token, b.line((*base, "expect", b_index, "table", r, c)))
                )
                if len(exps) == 1:
                    line = exps[0].line
            physical = list(
                itertools.product(alternatives(rows["values"][r]), alternatives(cols["values"][c]))
            )
            for sub, (sub_row, sub_col) in enumerate(physical):
                by_socket = {rows["socket"]: sub_row, cols["socket"]: sub_col}
                sub_exps = [pick(e, sub, len(physical)) for e in exps]
                cells.append(
                    _cell(
                        b,
                        suite,
                        profile,
                        variant,
                        by_socket,
                        sub_exps,
                        line,
                        then,
                        GridPosition(r, c, label(rows["values"][r]), label(cols["values"][c])),
                        (*base, "rows", "values", r),
                    )
                )
    return cells


def _block_applies(
    b: Builder, block: dict[str, Any], oracle: Oracle, profile: str | None, variant: dict[str, str]
) -> bool:
    if "profile" in block and block["profile"] != profile:
        return False
    if not b.expectation_matches(oracle, profile):
        return False
    return all(variant.get(k) == v for k, v in block.get("where", {}).items())


def _blocks(
    b: Builder,
    grid: dict[str, Any],
    suite: Suite,
    n_rows: int,
    n_cols: int,
    variants: list[dict[str, str]],
) -> list[tuple[dict[str, Any], Oracle]]:
    blocks = []
    claimed: dict[tuple[str, str | None, str], int] = {}
    for number, block in enumerate(grid["expect"]):
        path: Path = ("grid", "expect", number)
        oracle = suite.oracles.get(block["oracle"])
        if oracle is None:
            b.error(
                (*path, "oracle"),
                f"unknown oracle {excerpt(block['oracle'])}; "
                + suggest(block["oracle"], list(suite.oracles)),
            )
            continue
        if "profile" in block and block["profile"] not in suite.profiles:
            b.error(
                (*path, "profile"),
                f"unknown profile {excerpt(block['profile'])}; "
                + profiles_hint(suite.profiles, block["profile"]),
            )
            continue
        table = block["table"]
        if len(table) != n_rows:
            what = "missing" if len(table) < n_rows else "extra"
            b.error(
                (*path, "table", n_rows) if len(table) > n_rows else (*path, "table"),
                f"grid table for {excerpt(oracle.id)} has {len(table)} rows, the grid has "
                f"{n_rows} ({what} row)",
            )
            continue
        shape_ok = True
        for r, row in enumerate(table):
            if len(row) != n_cols:
                what = "missing" if len(row) < n_cols else "extra"
                b.error(
                    (*path, "table", r),
                    f"row {r + 1} of the {excerpt(oracle.id)} table has {len(row)} cells, "
                    f"the grid has {n_cols} columns ({what} cell)",
                )
                shape_ok = False
        if not shape_ok:
            continue
        matched = [
            v
            for v in variants or [{}]
            if all(v.get(k) == w for k, w in block.get("where", {}).items())
        ]
        if not matched:
            b.error(
                (*path, "where"),
                "this expectation is for cells that do not exist: no variant matches "
                f"{block.get('where')}",
            )
            continue
        profiles: list[str | None] = (
            [block["profile"]] if "profile" in block else (list(suite.profiles) or [None])
        )
        live = [p for p in profiles if b.expectation_matches(oracle, p)]
        if not live:
            b.error(
                (*path, "profile"),
                f"oracle {excerpt(oracle.id)} does not apply under profile {profiles}",
            )
            continue
        for p, v in itertools.product(live, matched):
            key = (oracle.id, p, b.variant_key(None, v))
            if key in claimed:
                b.error(
                    path,
                    f"expectations for {excerpt(oracle.id)} overlap with block "
                    f"{claimed[key] + 1} on {key[2] or 'all cells'} (profile {p})",
                )
            claimed[key] = number
        blocks.append((block, oracle))
    return blocks


def _cell(
    b: Builder,
    suite: Suite,
    profile: str | None,
    variant: dict[str, str],
    by_socket: dict[str, dict[str, Any]],
    exps: list[Expectation],
    line: int,
    then: list[Step | None],
    position: GridPosition,
    path: Path,
) -> Cell:
    specs = []
    tokens = []
    for name in ("first", "second"):
        fields = {
            **SOCKET_DEFAULTS,
            **{k: v for k, v in variant.items() if k != "state"},
            **by_socket[name],
        }
        b.check_socket(fields, path)
        specs.append(socket_spec(name, fields))
        tokens.append(f"{name}={token(by_socket[name])}")
    state = variant.get("state", "bound")
    steps = list(STATE_STEPS[state])
    if state in ("closed-established", "time-wait"):
        # the client that makes the connection: same family, no options, never bound
        specs.append(SocketSpec("peer", specs[0].family, "stream", None, (), "wildcard"))
    steps.append(Step("bind", "second"))
    under_test = len(steps) - 1
    steps += [s for s in then if s is not None]
    key = ",".join(tokens)
    vkey = b.variant_key(profile, variant)
    return Cell(
        suite=suite.id,
        name=f"{key}[{vkey}]" if vkey else key,
        key=key,
        variant=vkey,
        profile=profile,
        sockets=tuple(specs),
        steps=tuple(steps),
        under_test=under_test,
        expectations=tuple(exps),
        line=line,
        position=position,
        state=state,
        variant_fields=tuple(sorted(variant.items())),
    )
