"""Case files: load, validate (shipped JSON Schema, then meaning), expand into cells.

A file is one suite. A grid reads like the published table it encodes; each
cell, per profile and variant, becomes one Cell whose name is built from axis
values only, so ids are stable across hosts and edits of free text.
"""

from __future__ import annotations

import difflib
import ipaddress
import itertools
import json
from collections.abc import Iterator
from dataclasses import replace
from functools import cache
from importlib import resources
from pathlib import Path as FsPath
from typing import Any

import jsonschema

from . import goalcases
from .model import (
    ADDRESS_ROLES,
    CALLS,
    FAIRNESS_MIN,
    NO_CLAIM,
    OPTION_NAMES,
    PORT_CALLS,
    ROLES,
    SPREADS,
    STEP_OPTIONS,
    UNTIL_FREE,
    Cell,
    Expectation,
    GridPosition,
    Oracle,
    Profile,
    Reference,
    SocketSpec,
    Step,
    Suite,
)
from .oracles import SHIPPED_PROFILES
from .yamlsrc import MAX_BYTES, CaseError, CaseFileError, Located, Path, excerpt, load

SUFFIX = ".bind.yaml"
NEAR_SUFFIXES = (SUFFIX, ".bind.yml")  # in lower case: names meant as case files
SOCKET_DEFAULTS: dict[str, Any] = {"family": "inet", "type": "stream", "address": "wildcard"}
VARIANT_AXES = ("type", "family", "state")
MAX_CELLS = 20_000  # per suite; the largest shipped suite has 1,024
MAX_CHOICES = 30  # a suite may declare thousands of names; a message lists this many


@cache
def case_schema() -> dict[str, Any]:
    text = resources.files("pytest_bindconform").joinpath("schema/case.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = case_schema()
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def _suggest(value: object, choices: list[str]) -> str:
    if not choices:
        return "there are no valid choices: none is declared"
    text = str(value)
    hint = ""
    if len(text) <= 100:  # difflib on a megabyte of text would take its time
        same_but_case = [c for c in choices if c.lower() == text.lower() and c != text]
        close = same_but_case or difflib.get_close_matches(text, choices, n=1)
        hint = f"; did you mean {excerpt(close[0])}?" if close else ""
    shown = [c if len(c) <= 60 else excerpt(c) for c in choices[:MAX_CHOICES]]
    more = f", … ({len(choices) - MAX_CHOICES} more)" if len(choices) > MAX_CHOICES else ""
    return f"valid choices: {', '.join(shown)}{more}{hint}"


def _leaf_errors(error: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    """The most specific errors: anyOf/oneOf complaints are useless to a case author."""
    if error.context and error.validator in ("anyOf", "oneOf"):
        deepest = max(len(e.absolute_path) for e in error.context)
        best = [e for e in error.context if len(e.absolute_path) == deepest]
        enums = [e for e in best if e.validator in ("enum", "const")]
        if enums:
            choices: list[str] = []
            for e in enums:
                allowed: Any = e.validator_value
                choices += [str(c) for c in allowed] if e.validator == "enum" else [str(allowed)]
            merged = enums[0]
            merged.validator_value = list(dict.fromkeys(choices))
            merged.validator = "enum"
            yield merged
            return
        for e in best[:1]:
            yield from _leaf_errors(e)
        return
    yield error


def _describe(error: jsonschema.ValidationError, src: Located, filename: str) -> list[CaseError]:
    """Author-facing errors: where (file:line:col of the very token), what, and the choices."""
    kinds = {
        "string": "a string",
        "boolean": "a boolean (true or false)",
        "array": "a list",
        "object": "a mapping",
        "integer": "an integer",
        "number": "a number",
        "str": "the string",
        "bool": "the boolean",
        "int": "the integer",
        "float": "the number",
        "list": "the list",
        "dict": "the mapping",
        "date": "the date",
    }
    path: Path = tuple(error.absolute_path)
    where = "".join(
        f"[{p}]" if isinstance(p, int) else f".{p if len(str(p)) <= 60 else excerpt(p)}"
        for p in path
    ).lstrip(".")
    where = where or "the top level"
    instance = error.instance
    value: Any = error.validator_value
    schema: Any = error.schema

    def got(it: object) -> str:
        if it is None:
            return "nothing (an empty value)"
        kind = type(it).__name__
        return f"{kinds.get(kind, kind)} {excerpt(it)}"

    def at(message: str, line_col: tuple[int, int] | None = None) -> CaseError:
        line, col = line_col or src.where(path)
        return CaseError(filename, line, col, message)

    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        return [
            at(
                f"unknown key {excerpt(key)} in {where}; {_suggest(key, allowed)}",
                src.where((*path, key), key=True),
            )
            for key in instance
            if key not in allowed
        ]
    if "propertyNames" in error.schema_path and isinstance(instance, str):
        return [
            at(
                f"key {excerpt(instance)} in {where} is not a valid name (lower-case letters, "
                "digits, '.', '_' and '-', starting with a letter or digit)",
                src.where((*path, instance), key=True),
            )
        ]
    if error.validator in ("enum", "const"):
        choices = [str(c) for c in value] if error.validator == "enum" else [str(value)]
        if isinstance(instance, str) and "|" in instance:  # 'X|Y' of a merged row/column
            bad = [part for part in instance.split("|") if part not in choices]
            if bad:
                return [
                    at(
                        f"{where}: {excerpt(bad[0])} in {excerpt(instance)} is not allowed; "
                        + _suggest(bad[0], [c for c in choices if "|" not in c])
                    )
                ]
        if not isinstance(instance, str) or str(instance) in choices:
            expected = choices[0] if len(choices) == 1 else f"one of {', '.join(choices)}"
            return [at(f"{where}: expected {expected}, got {got(instance)}")]
        return [at(f"{where}: {excerpt(instance)} is not allowed; {_suggest(instance, choices)}")]
    if error.validator == "required" and isinstance(instance, dict):
        needed = list(value)
        missing = [k for k in needed if k not in instance]
        return [
            at(
                f"{where}: required key {', '.join(map(repr, missing))} is missing "
                f"(required here: {', '.join(needed)})"
            )
        ]
    if error.validator == "type":
        hint = (
            "; YAML reads unquoted true/false/yes/no/on/off, numbers and dates as such: "
            "put it in quotes"
            if value == "string" and instance is not None
            else ""
        )
        types = [str(v) for v in (value if isinstance(value, list) else [value])]
        wanted = " or ".join(kinds.get(v, v) for v in types)
        return [at(f"{where}: expected {wanted}, got {got(instance)}{hint}")]
    if error.validator == "pattern":
        return [
            at(
                f"{where}: {excerpt(instance)} is not a valid id (lower-case letters, digits, "
                "'.', '_' and '-', starting with a letter or digit)"
            )
        ]
    if error.validator == "uniqueItems" and isinstance(instance, list):
        again = _repeated(instance)
        return [
            at(f"{where}: {excerpt(instance[again])} is listed twice", src.where((*path, again)))
        ]
    if error.validator in ("minItems", "minLength", "minProperties") and value == 1:
        return [at(f"{where}: must not be empty")]
    # jsonschema's own words quote the whole value, which may be megabytes long
    return [at(f"{where}: {error.message.replace(repr(instance), excerpt(instance))}")]


def _repeated(items: list[Any]) -> int:
    """Index of the first item equal to an earlier one (items may be unhashable)."""
    seen: set[str] = set()
    for i, item in enumerate(items):
        key = json.dumps(item, sort_keys=True, default=str)
        if key in seen:
            return i
        seen.add(key)
    return 0


def validate(src: Located, filename: str) -> list[CaseError]:
    """Schema errors, plus unique case ids (a schema cannot say 'unique by id')."""
    errors: list[CaseError] = []
    for error in _validator().iter_errors(src.data):
        for leaf in _leaf_errors(error):
            errors += _describe(leaf, src, filename)
    first: dict[str, tuple[int, int]] = {}
    cases = src.data.get("cases") if isinstance(src.data, dict) else None
    for i, case in enumerate(cases if isinstance(cases, list) else []):
        case_id = case.get("id") if isinstance(case, dict) else None
        if not isinstance(case_id, str):
            continue
        line, col = src.where(("cases", i, "id"))
        if case_id in first:
            errors.append(
                CaseError(
                    filename,
                    line,
                    col,
                    f"duplicate case id {excerpt(case_id)} (first at "
                    f"line {first[case_id][0]}, column {first[case_id][1]})",
                )
            )
        first.setdefault(case_id, (line, col))
    return sorted(set(errors), key=lambda e: (e.line, e.column, e.message))


class _Builder:
    """Turns validated data into a Suite, collecting every semantic error."""

    def __init__(self, src: Located, filename: str):
        self.src = src
        self.file = filename
        self.errors: list[CaseError] = []
        self.planned = 0  # cells the suite expands to so far
        self.data: dict[str, Any] = src.data

    def error(self, path: Path, message: str, *, key: bool = False) -> None:
        line, col = self.src.where(path, key=key)
        self.errors.append(CaseError(self.file, line, col, message))

    def line(self, path: Path) -> int:
        return self.src.where(path)[0]

    def room_for(self, cells: int, path: Path) -> bool:
        """Count cells before making them: a small file can multiply into millions."""
        over = self.planned > MAX_CELLS
        self.planned += cells
        if self.planned <= MAX_CELLS:
            return True
        if not over:
            self.error(
                path,
                f"the suite expands to more than {MAX_CELLS} cells here (profiles x variants x "
                "cases or grid cells; the largest shipped suite has 1,024); split it into "
                "several files",
            )
        return False

    # -- suite level -------------------------------------------------------
    def build(self) -> Suite:
        d = self.data
        refs = tuple(Reference(**r) for r in d.get("references", []))
        ref_ids = [r.id for r in refs]
        for i, ref_id in enumerate(ref_ids):
            if ref_ids.index(ref_id) != i:
                self.error(("references", i, "id"), f"duplicate reference id {excerpt(ref_id)}")
        profiles = self.profiles()
        oracles = self.oracles(ref_ids, profiles)
        suite = Suite(
            id=d["id"],
            title=d["title"],
            description=d.get("description", ""),
            path=self.file,
            references=refs,
            oracles=oracles,
            profiles=profiles,
            facts=tuple(d.get("facts", [])),
            id_position=self.src.where(("id",)),
        )
        if "goal" in d:
            suite.cells += goalcases.build(self, d, suite)
        elif "grid" in d:
            suite.cells += self.grid(d["grid"], suite)
        for i, case in enumerate([] if "goal" in d else d.get("cases", [])):
            goalcases.reject_goal_keys(self, case, ("cases", i))
            suite.cells += self.case(case, ("cases", i), suite) if "expect" in case else []
        if "grid" not in d and not d.get("cases"):
            self.error((), "a suite needs a 'grid' or at least one entry in 'cases'")
        seen: dict[str, Cell] = {}
        for cell in suite.cells:
            if cell.name in seen:
                self.errors.append(
                    CaseError(
                        self.file,
                        cell.line,
                        1,
                        f"duplicate case id {excerpt(cell.name)} "
                        f"(first at line {seen[cell.name].line})",
                    )
                )
            else:
                seen[cell.name] = cell
        return suite

    def profiles(self) -> dict[str, Profile]:
        result: dict[str, Profile] = {}
        for i, entry in enumerate(self.data.get("profiles", [])):
            if isinstance(entry, str):
                profile = SHIPPED_PROFILES[entry]
            else:
                profile = Profile(
                    id=entry["id"],
                    description=entry["description"],
                    windows={k: tuple(v) for k, v in entry["windows"].items()},
                    posix={k: tuple(v) for k, v in entry["posix"].items()},
                )
            if profile.id in result:
                self.error(("profiles", i), f"profile {excerpt(profile.id)} listed twice")
            result[profile.id] = profile
        return result

    def oracles(self, ref_ids: list[str], profiles: dict[str, Profile]) -> dict[str, Oracle]:
        result = {}
        for oid, o in self.data["oracles"].items():
            path: Path = ("oracles", oid)
            if "reference" in o and o["reference"] not in ref_ids:
                self.error(
                    (*path, "reference"),
                    f"oracle {excerpt(oid)} cites unknown reference {excerpt(o['reference'])}; "
                    + _suggest(o["reference"], ref_ids),
                )
            profs = o.get("profiles", "any")
            if profs != "any":
                for j, p in enumerate(profs):
                    if p not in profiles:
                        self.error(
                            (*path, "profiles", j),
                            f"unknown profile {excerpt(p)}; " + _profiles_hint(profiles, p),
                        )
            applies = o["applies"]
            result[oid] = Oracle(
                id=oid,
                kind=o["kind"],
                source=o["source"],
                os=applies["os"],
                reference=o.get("reference", ""),
                table=o.get("table", ""),
                min_version=applies.get("min_version", ""),
                max_version=applies.get("max_version", ""),
                profiles=None if profs == "any" else tuple(profs),
                sysctl=tuple(sorted(applies.get("sysctl", {}).items())),
            )
        return result

    # -- shared pieces -----------------------------------------------------
    def variants(self, spec: dict[str, list[str]] | None) -> list[dict[str, str]]:
        spec = spec or {}
        axes = [a for a in VARIANT_AXES if a in spec]
        out = []
        for combo in itertools.product(*(spec[a] for a in axes)):
            variant = dict(zip(axes, combo, strict=True))
            if variant.get("state", "bound") != "bound" and variant.get("type") == "dgram":
                continue  # a datagram socket cannot listen or hold connections
            out.append(variant)
        return out

    def check_options(self, items: list[str], path: Path, suite: Suite) -> None:
        for i, item in enumerate(items):
            if item in ROLES and item != "default" and not suite.profiles:
                self.error(
                    (*path, i),
                    f"option role {excerpt(item)} needs a profile to resolve it; add "
                    "'profiles: [reuseport]' (or reuseaddr) to the suite, or use a raw option "
                    f"name ({', '.join(OPTION_NAMES)})",
                )

    def check_socket(self, fields: dict[str, Any], path: Path) -> None:
        family, address = fields["family"], fields["address"]
        if address not in ADDRESS_ROLES:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                self.error(
                    (*path, "address"),
                    f"address {excerpt(address)} is neither a role nor an IP literal; "
                    + _suggest(address, list(ADDRESS_ROLES)),
                )
                return
            want = "inet" if ip.version == 4 else "inet6"
            if want != family:
                self.error(
                    (*path, "address"), f"address {address} needs family {want}, not {family}"
                )
        elif address.startswith("v4mapped") and family != "inet6":
            self.error((*path, "address"), f"address role {excerpt(address)} needs family inet6")
        if fields.get("v6only") is not None and family != "inet6":
            self.error((*path, "v6only"), "v6only only applies to family inet6")

    def check_ports(
        self, sockets: dict[str, dict[str, Any]], steps: list[Step], path: Path
    ) -> None:
        """'same-as X' names another socket whose bind comes first; 'rebind' needs port 0."""
        first_bind: dict[str, int] = {}
        for i, step in enumerate(steps):
            if step.call == "bind":
                first_bind.setdefault(step.socket, i)
        for sname, fields in sockets.items():
            port = fields.get("port")
            if not isinstance(port, str) or not port.startswith("same-as "):
                continue
            where: Path = (*path, "sockets", sname, "port")
            other = port.removeprefix("same-as ")
            valid = [f"same-as {n}" for n in sockets if n != sname]
            if other not in sockets or other == sname:
                self.error(
                    where,
                    f"port {excerpt(port)} names no other socket of this case; "
                    + _suggest(port, valid),
                )
            elif first_bind.get(other, len(steps)) > first_bind.get(sname, len(steps)):
                self.error(
                    where,
                    f"port {excerpt(port)}: 'bind {other}' must come before 'bind {sname}', "
                    f"so that {other} has a port to share",
                )
        for i, step in enumerate(steps):
            if step.call == "rebind" and sockets.get(step.socket, {}).get("port") != 0:
                self.error(
                    (*path, "steps", i),
                    f"step {excerpt(str(step))}: rebind needs a socket with 'port: 0' "
                    "(it asks the kernel for an ephemeral port again and again)",
                )

    def variant_key(self, profile: str | None, variant: dict[str, str]) -> str:
        parts = [profile] if profile else []
        if "type" in variant:
            transport = "tcp" if variant["type"] == "stream" else "udp"
            if "family" in variant:
                transport += "4" if variant["family"] == "inet" else "6"
            parts.append(transport)
        elif "family" in variant:
            parts.append(variant["family"])
        if "state" in variant:
            parts.append(variant["state"])
        return "-".join(parts)

    def expectation_matches(self, oracle: Oracle | None, profile: str | None) -> bool:
        return oracle is not None and (oracle.profiles is None or profile in oracle.profiles)

    # -- grids -------------------------------------------------------------
    def grid(self, grid: dict[str, Any], suite: Suite) -> list[Cell]:
        base: Path = ("grid",)
        rows, cols = grid["rows"], grid["columns"]
        if rows["socket"] == cols["socket"]:
            self.error(
                (*base, "columns", "socket"), "rows and columns must describe different sockets"
            )
            return []
        n_rows, n_cols = len(rows["values"]), len(cols["values"])
        variants = self.variants(grid.get("variants"))
        for axis in ("rows", "columns"):
            for i, value in enumerate(grid[axis]["values"]):
                if "option" in value and "options" in value:
                    self.error((*base, axis, "values", i), "use 'option' or 'options', not both")
                if "port" in value:
                    self.error(
                        (*base, axis, "values", i, "port"),
                        "a grid's two sockets share the cell's port; a socket's own 'port' "
                        "is for individual cases (under 'cases')",
                        key=True,
                    )
                for key in ("option", "options"):
                    if key in value:
                        opts = value[key] if isinstance(value[key], list) else [value[key]]
                        self.check_options(opts, (*base, axis, "values", i, key), suite)
        blocks = self.grid_blocks(grid, suite, n_rows, n_cols, variants)
        then = [
            self.parse_step(s, {"first", "second"}, (*base, "then", i))
            for i, s in enumerate(grid.get("then", []))
        ]
        suite.grid = {
            "orientation": grid.get(
                "orientation",
                f"rows: {rows['socket']} socket; columns: {cols['socket']} socket",
            ),
            "row_socket": rows["socket"],
            "column_socket": cols["socket"],
            "rows": [_label(v) for v in rows["values"]],
            "columns": [_label(v) for v in cols["values"]],
            "variants": [self.variant_key(None, v) for v in variants] or [""],
        }
        cells = []
        profiles: list[str | None] = list(suite.profiles) or [None]
        merged = sum(len(_alternatives(v)) for v in rows["values"]) * sum(
            len(_alternatives(v)) for v in cols["values"]
        )
        if not self.room_for(len(profiles) * max(1, len(variants)) * merged, base):
            return []
        for profile, variant in itertools.product(profiles, variants or [{}]):
            for r, c in itertools.product(range(n_rows), range(n_cols)):
                exps = []
                line = self.line((*base, "rows", "values", r))
                for b_index, (block, oracle) in enumerate(blocks):
                    if not self.block_applies(block, oracle, profile, variant):
                        continue
                    token = block["table"][r][c]
                    n_alt = len(_alternatives(rows["values"][r])) * len(
                        _alternatives(cols["values"][c])
                    )
                    if "|" in token and token.count("|") + 1 != n_alt:
                        self.error(
                            (*base, "expect", b_index, "table", r, c),
                            f"{excerpt(token)} gives {token.count('|') + 1} outcomes but this "
                            f"cell merges {n_alt} option sets",
                        )
                        continue
                    exps.append(
                        _expectation(
                            oracle.id, token, self.line((*base, "expect", b_index, "table", r, c))
                        )
                    )
                    if len(exps) == 1:
                        line = exps[0].line
                alternatives = list(
                    itertools.product(
                        _alternatives(rows["values"][r]), _alternatives(cols["values"][c])
                    )
                )
                for sub, (sub_row, sub_col) in enumerate(alternatives):
                    by_socket = {rows["socket"]: sub_row, cols["socket"]: sub_col}
                    sub_exps = [_pick(e, sub, len(alternatives)) for e in exps]
                    cells.append(
                        self.grid_cell(
                            suite,
                            profile,
                            variant,
                            by_socket,
                            sub_exps,
                            line,
                            then,
                            GridPosition(
                                r, c, _label(rows["values"][r]), _label(cols["values"][c])
                            ),
                            (*base, "rows", "values", r),
                        )
                    )
        return cells

    def block_applies(
        self, block: dict[str, Any], oracle: Oracle, profile: str | None, variant: dict[str, str]
    ) -> bool:
        if "profile" in block and block["profile"] != profile:
            return False
        if not self.expectation_matches(oracle, profile):
            return False
        return all(variant.get(k) == v for k, v in block.get("where", {}).items())

    def grid_blocks(
        self,
        grid: dict[str, Any],
        suite: Suite,
        n_rows: int,
        n_cols: int,
        variants: list[dict[str, str]],
    ) -> list[tuple[dict[str, Any], Oracle]]:
        blocks = []
        claimed: dict[tuple[str, str | None, str], int] = {}
        for b, block in enumerate(grid["expect"]):
            path: Path = ("grid", "expect", b)
            oracle = suite.oracles.get(block["oracle"])
            if oracle is None:
                self.error(
                    (*path, "oracle"),
                    f"unknown oracle {excerpt(block['oracle'])}; "
                    + _suggest(block["oracle"], list(suite.oracles)),
                )
                continue
            if "profile" in block and block["profile"] not in suite.profiles:
                self.error(
                    (*path, "profile"),
                    f"unknown profile {excerpt(block['profile'])}; "
                    + _profiles_hint(suite.profiles, block["profile"]),
                )
                continue
            table = block["table"]
            if len(table) != n_rows:
                what = "missing" if len(table) < n_rows else "extra"
                self.error(
                    (*path, "table", n_rows) if len(table) > n_rows else (*path, "table"),
                    f"grid table for {excerpt(oracle.id)} has {len(table)} rows, the grid has "
                    f"{n_rows} ({what} row)",
                )
                continue
            shape_ok = True
            for r, row in enumerate(table):
                if len(row) != n_cols:
                    what = "missing" if len(row) < n_cols else "extra"
                    self.error(
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
                self.error(
                    (*path, "where"),
                    "this expectation is for cells that do not exist: no variant matches "
                    f"{block.get('where')}",
                )
                continue
            profiles: list[str | None] = (
                [block["profile"]] if "profile" in block else (list(suite.profiles) or [None])
            )
            live = [p for p in profiles if self.expectation_matches(oracle, p)]
            if not live:
                self.error(
                    (*path, "profile"),
                    f"oracle {excerpt(oracle.id)} does not apply under profile {profiles}",
                )
                continue
            for p, v in itertools.product(live, matched):
                key = (oracle.id, p, self.variant_key(None, v))
                if key in claimed:
                    self.error(
                        path,
                        f"expectations for {excerpt(oracle.id)} overlap with block "
                        f"{claimed[key] + 1} on {key[2] or 'all cells'} (profile {p})",
                    )
                claimed[key] = b
            blocks.append((block, oracle))
        return blocks

    def grid_cell(
        self,
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
            self.check_socket(fields, path)
            specs.append(_spec(name, fields))
            tokens.append(f"{name}={_token(by_socket[name])}")
        state = variant.get("state", "bound")
        steps = list(STATE_STEPS[state])
        if state in ("closed-established", "time-wait"):
            # the client that makes the connection: same family, no options, never bound
            specs.append(SocketSpec("peer", specs[0].family, "stream", None, (), "wildcard"))
        steps.append(Step("bind", "second"))
        under_test = len(steps) - 1
        steps += [s for s in then if s is not None]
        key = ",".join(tokens)
        vkey = self.variant_key(profile, variant)
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

    # -- individual cases --------------------------------------------------
    def parse_step(
        self, text: str, sockets: set[str], path: Path, extra: tuple[str, ...] = ()
    ) -> Step | None:
        parts = text.split()
        usage = "'<call> <socket>' or '<call> <socket> <argument>', e.g. 'bind first'"
        if len(parts) not in (2, 3):
            self.error(path, f"step {excerpt(text)} must be {usage}")
            return None
        call, sock = parts[0], parts[1]
        argument = parts[2] if len(parts) == 3 else ""
        if call not in CALLS + PORT_CALLS + extra:
            self.error(
                path,
                f"unknown call {excerpt(call)} in step {excerpt(text)}; "
                + _suggest(call, [*CALLS, *PORT_CALLS, *extra]),
            )
            return None
        if sock not in sockets and not (sock.endswith(".conn") and sock[:-5] in sockets):
            valid = sorted(sockets) + [
                f"{name}.conn (after 'accept {name}')" for name in sorted(sockets)
            ]
            self.error(
                path,
                f"unknown socket {excerpt(sock)} in step {excerpt(text)}; " + _suggest(sock, valid),
            )
            return None
        needs = {
            "setsockopt": list(OPTION_NAMES) + list(ROLES) + list(STEP_OPTIONS),
            "connect": list(ADDRESS_ROLES) + sorted(sockets),
            "compare-ports": sorted(sockets),
        }
        if call in needs and argument not in needs[call]:
            what = {
                "setsockopt": "an option",
                "connect": "an address role or a socket name",
                "compare-ports": "the socket to compare with",
            }[call]
            self.error(
                path,
                f"step {excerpt(text)}: {call} needs {what}; " + _suggest(argument, needs[call]),
            )
            return None
        if call == "bind" and argument not in ("", UNTIL_FREE):
            self.error(
                path,
                f"step {excerpt(text)}: bind takes no argument or {UNTIL_FREE!r} (retry until "
                "the port is free, a slow cell); " + _suggest(argument, [UNTIL_FREE]),
            )
            return None
        if call not in needs and call != "bind" and argument:
            self.error(path, f"step {excerpt(text)}: {call} takes no argument")
            return None
        return Step(call, sock, argument)

    def case(self, case: dict[str, Any], path: Path, suite: Suite) -> list[Cell]:
        profiles: list[str | None] = list(suite.profiles) or [None]
        variants = self.variants(case.get("variants"))
        if not self.room_for(len(profiles) * max(1, len(variants)), path):
            return []
        names = set(case["sockets"])
        steps = [
            self.parse_step(s, names, (*path, "steps", i), extra=JOIN)
            for i, s in enumerate(case["steps"])
        ]
        if any(s is None for s in steps):
            return []
        real_steps = [s for s in steps if s is not None]
        under_test = len(real_steps) - 1
        if "test" in case:
            wanted = self.parse_step(case["test"], names, (*path, "test"), extra=JOIN)
            if wanted is None:
                return []
            if wanted not in real_steps:
                self.error(
                    (*path, "test"),
                    f"step under test {excerpt(case['test'])} is not among the steps: "
                    f"{', '.join(map(str, real_steps))}",
                )
                return []
            under_test = real_steps.index(wanted)
        for sname, fields in case["sockets"].items():
            if "option" in fields:
                self.error(
                    (*path, "sockets", sname, "option"),
                    "individual cases list socket options under 'options'",
                )
            self.check_options(
                fields.get("options", []), (*path, "sockets", sname, "options"), suite
            )
        self.check_ports(case["sockets"], real_steps, path)
        exp_by_profile: dict[str | None, list[Expectation]] = {}
        known = set(profiles)  # thousands of profiles: a list would make this quadratic
        for oid, value in case["expect"].items():
            epath: Path = (*path, "expect", oid)
            oracle = suite.oracles.get(oid)
            if oracle is None:
                self.error(
                    epath,
                    f"unknown oracle {excerpt(oid)}; " + _suggest(oid, list(suite.oracles)),
                    key=True,
                )
                continue
            per_profile = value if isinstance(value, dict) else {p: value for p in profiles}
            for p, token in per_profile.items():
                if p not in known:
                    self.error(
                        (*epath, str(p)),
                        f"unknown profile {excerpt(p)}; " + _profiles_hint(suite.profiles, str(p)),
                        key=True,
                    )
                    continue
                if self.expectation_matches(oracle, p):
                    exp_by_profile.setdefault(p, []).append(
                        _expectation(
                            oid,
                            token,
                            self.line((*epath, str(p)) if isinstance(value, dict) else epath),
                        )
                    )
        for oid, receiver in case.get("deliver", {}).items():
            dpath: Path = (*path, "deliver", oid)
            valid = sorted(names) + ["both", "shared", "none"]
            if oid not in suite.oracles:
                self.error(
                    dpath,
                    f"unknown oracle {excerpt(oid)}; " + _suggest(oid, list(suite.oracles)),
                    key=True,
                )
            else:
                per_profile = (
                    receiver if isinstance(receiver, dict) else {p: receiver for p in profiles}
                )
                for p, who in per_profile.items():
                    if p not in known:
                        self.error(
                            (*dpath, str(p)),
                            f"unknown profile {excerpt(p)}; "
                            + _profiles_hint(suite.profiles, str(p)),
                            key=True,
                        )
                        continue
                    if who not in valid:
                        self.error(
                            dpath,
                            f"receiver {excerpt(who)} is not a socket of this case; "
                            + _suggest(who, valid),
                        )
                        continue
                    exps = exp_by_profile.get(p, [])
                    exps[:] = [replace(e, receiver=who) if e.oracle == oid else e for e in exps]
        self.spreads(case, path, suite, real_steps, exp_by_profile)
        line = self.line(path)
        cells = []
        for profile, variant in itertools.product(profiles, variants or [{}]):
            specs = []
            for sname, fields in case["sockets"].items():
                merged = {
                    **SOCKET_DEFAULTS,
                    **{k: v for k, v in variant.items() if k != "state"},
                    **fields,
                }
                self.check_socket(merged, (*path, "sockets", sname))
                specs.append(_spec(sname, merged))
            self.check_joins(real_steps, specs, path)
            vkey = self.variant_key(profile, variant)
            cells.append(
                Cell(
                    suite=suite.id,
                    name=f"{case['id']}[{vkey}]" if vkey else case["id"],
                    key=case["id"],
                    variant=vkey,
                    profile=profile,
                    sockets=tuple(specs),
                    steps=tuple(real_steps),
                    under_test=under_test,
                    expectations=tuple(exp_by_profile.get(profile, [])),
                    line=line,
                    state=variant.get("state", "bound"),
                    variant_fields=tuple(sorted(variant.items())),
                    delivery_probes=int(case.get("probes", 16)),
                )
            )
        return cells

    def spreads(
        self,
        case: dict[str, Any],
        path: Path,
        suite: Suite,
        steps: list[Step],
        exp_by_profile: dict[str | None, list[Expectation]],
    ) -> None:
        """'spread:' per oracle (and profile): how the delivery probe's traffic is
        distributed (model.SPREADS); 'last-binder' also names the socket bound last."""
        fairness_min = float(case.get("fairness", FAIRNESS_MIN))
        bound = [s.socket for s in steps if s.call == "bind"]
        profiles: list[str | None] = list(suite.profiles) or [None]
        for oid, value in case.get("spread", {}).items():
            spath: Path = (*path, "spread", oid)
            if oid not in suite.oracles:
                self.error(
                    spath,
                    f"unknown oracle {excerpt(oid)}; " + _suggest(oid, list(suite.oracles)),
                    key=True,
                )
                continue
            if oid in case.get("deliver", {}):
                self.error(spath, f"oracle {excerpt(oid)} says 'deliver' and 'spread': one")
                continue
            per_profile = value if isinstance(value, dict) else dict.fromkeys(profiles, value)
            for p, shape in per_profile.items():
                where = (*spath, str(p)) if isinstance(value, dict) else spath
                if p not in profiles:
                    self.error(
                        where,
                        f"unknown profile {excerpt(p)}; " + _profiles_hint(suite.profiles, str(p)),
                        key=True,
                    )
                    continue
                if shape not in SPREADS:
                    self.error(
                        where,
                        f"spread {excerpt(shape)} is unknown; " + _suggest(shape, list(SPREADS)),
                    )
                    continue
                if shape == "last-binder" and not bound:
                    self.error(where, "spread last-binder needs a 'bind' step")
                    continue
                who = bound[-1] if shape == "last-binder" else ""
                exps = exp_by_profile.get(p, [])
                exps[:] = [
                    replace(e, spread=shape, fairness_min=fairness_min, receiver=who)
                    if e.oracle == oid
                    else e
                    for e in exps
                ]

    def check_joins(self, steps: list[Step], specs: list[SocketSpec], path: Path) -> None:
        """A 'join' step joins the loopback multicast group: only a UDP socket can."""
        types = {spec.name: spec.type for spec in specs}
        for i, step in enumerate(steps):
            if step.call == "join" and types.get(step.socket) != "dgram":
                self.error(
                    (*path, "steps", i), f"step {excerpt(str(step))}: join needs a UDP socket"
                )


JOIN = ("join",)  # ordinary cases may join the loopback group (goal suites: GOAL_CALLS)


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


def _profiles_hint(declared: dict[str, Profile], wrong: str) -> str:
    if not declared:
        return (
            "this suite declares no profiles; add 'profiles: [reuseport]' (or reuseaddr) "
            "at the top level, or drop the profile"
        )
    return "the suite's profiles are: " + _suggest(wrong, list(declared))


def _alternatives(value: dict[str, Any]) -> list[dict[str, Any]]:
    """A merged row/column ('option: [default, reuse]') stands for several physical cells."""
    if isinstance(value.get("option"), list):
        return [{**value, "option": opt} for opt in value["option"]]
    return [value]


def _options(fields: dict[str, Any]) -> tuple[str, ...]:
    if "options" in fields:
        return tuple(fields["options"])
    opt = fields.get("option")
    return () if opt in (None, "default") else (opt,)


def _spec(name: str, fields: dict[str, Any]) -> SocketSpec:
    opt = fields.get("option")
    options = ("default",) if opt == "default" else _options(fields)
    return SocketSpec(
        name=name,
        family=fields["family"],
        type=fields["type"],
        v6only=fields.get("v6only"),
        options=options,
        address=fields["address"],
        owner=fields.get("owner", "self"),
        port=str(fields["port"]) if "port" in fields else "",
    )


def _address_token(address: str) -> str:
    # '::' would split a pytest node id; keep literals readable but id-safe.
    return address.replace(":", "_")


def _token(fields: dict[str, Any]) -> str:
    """Id token of one socket's axis value: options@[family.]address[.v6only|.dual]."""
    if "options" in fields:
        opts = "+".join(fields["options"]) or "none"
    else:
        opts = str(fields.get("option", "default"))
    where = [fields["family"]] if "family" in fields else []
    where.append(_address_token(str(fields.get("address", "wildcard"))))
    if "v6only" in fields:
        where.append("v6only" if fields["v6only"] else "dual")
    return f"{opts}@{'.'.join(where)}"


def _label(value: dict[str, Any]) -> str:
    """Human label of a row or column, as a table header."""
    if "options" in value:
        opts = " + ".join(value["options"]) or "no option"
    elif isinstance(value.get("option"), list):
        opts = " or ".join(value["option"])
    else:
        opts = str(value.get("option", "default"))
    addr = str(value.get("address", "wildcard"))
    if addr.count(":") >= 2:
        addr = f"[{addr}]"
    extra = ""
    if "v6only" in value:
        extra = " v6only" if value["v6only"] else " dual-stack"
    return f"{opts}, {addr}{extra}"


def _pick(exp: Expectation, index: int, count: int) -> Expectation:
    """The expectation of one physical cell of a merged row/column ('X|Y' tokens)."""
    parts = exp.outcome.split("|")
    if len(parts) == 1:
        return exp
    return _expectation(exp.oracle, parts[index], exp.line)


def _expectation(oracle: str, token: str, line: int) -> Expectation:
    if "|" in token:  # split per physical cell by _pick
        return Expectation(oracle=oracle, outcome=token, line=line)
    undefined = token.endswith("*")
    outcome = token.rstrip("*")
    return Expectation(oracle=oracle, outcome=outcome, undefined_delivery=undefined, line=line)


def _one(filename: str, line: int, column: int, message: str) -> CaseFileError:
    return CaseFileError([CaseError(filename, line, column, message)])


def read_case_file(path: FsPath | str, filename: str) -> bytes:
    """The file's bytes, read no further than MAX_BYTES: a bigger file is not a case file."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _one(filename, 1, 1, f"cannot read case file: {exc}") from None
    if len(raw) > MAX_BYTES:
        raise _one(
            filename,
            1,
            1,
            f"case file is larger than the limit of {MAX_BYTES} bytes (the largest shipped "
            "suite is 40 kB); split it into several files",
        )
    return raw


def _decode(raw: bytes, filename: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        column = len(raw[start : exc.start].decode("utf-8", "replace")) + 1
        raise _one(
            filename,
            line,
            column,
            f"not UTF-8: byte {raw[exc.start]:#04x} cannot be decoded; case files must be "
            "saved as UTF-8",
        ) from None


def load_suite(path: FsPath | str, display: str | None = None) -> Suite:
    """Load one case file; raise CaseFileError listing every problem in it."""
    filename = display or str(path)
    return parse_suite(read_case_file(path, filename), filename)


def parse_suite(raw: bytes, filename: str) -> Suite:
    """A suite from a case file's bytes (filename names it in errors and ids)."""
    text = _decode(raw, filename)
    src = load(text, filename)
    if not isinstance(src.data, dict):
        got = "an empty file" if src.data is None else f"a {type(src.data).__name__}"
        raise _one(
            filename,
            *src.where(()),
            f"a case file must be a mapping starting with 'format: 1', got {got}",
        )
    errors = validate(src, filename)
    if errors:
        raise CaseFileError(errors)
    builder = _Builder(src, filename)
    suite = builder.build()
    if builder.errors:
        errors = sorted(set(builder.errors), key=lambda e: (e.line, e.column, e.message))
        raise CaseFileError(errors)
    return suite


def discover(root: FsPath) -> list[FsPath]:
    """Every case file under root, in a deterministic order."""
    return sorted(p for p in root.rglob(f"*{SUFFIX}") if p.is_file())


__all__ = [
    "NO_CLAIM",
    "SUFFIX",
    "CaseError",
    "CaseFileError",
    "discover",
    "load_suite",
    "parse_suite",
    "read_case_file",
]
