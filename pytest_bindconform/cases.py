"""Case files: load, validate (shipped JSON Schema, then meaning), expand into cells.

A file is one suite. A grid reads like the published table it encodes; each
cell, per profile and variant, becomes one Cell whose name is built from axis
values only, so ids are stable across hosts and edits of free text.

The loader, stage by stage: yamlsrc.py (YAML with every value's line and column),
caseschema.py (the JSON Schema, in an author's words), this module's Builder (the
suite: references, profiles, oracles, and the checks every kind of case shares),
casegrid.py (grids), caselist.py (individual cases), goalcases.py (goal suites), and
caseparts.py (the small pieces they share).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
from pathlib import Path as FsPath
from typing import Any

from . import casegrid, caselist, goalcases
from .caseparts import profiles_hint, suggest
from .caseschema import validate
from .model import (
    ADDRESS_ROLES,
    CALLS,
    NO_CLAIM,
    OPTION_NAMES,
    PORT_CALLS,
    ROLES,
    STEP_OPTIONS,
    UNTIL_FREE,
    Cell,
    Oracle,
    Profile,
    Reference,
    Step,
    Suite,
)
from .oracles import SHIPPED_PROFILES
from .yamlsrc import MAX_BYTES, CaseError, CaseFileError, Located, Path, excerpt, load

SUFFIX = ".bind.yaml"
NEAR_SUFFIXES = (SUFFIX, ".bind.yml")  # in lower case: names meant as case files
VARIANT_AXES = ("type", "family", "state")
MAX_CELLS = 20_000  # per suite; the largest shipped suite has 1,024


class Builder:
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
            suite.cells += casegrid.grid_cells(self, d["grid"], suite)
        for i, case in enumerate([] if "goal" in d else d.get("cases", [])):
            goalcases.reject_goal_keys(self, case, ("cases", i))
            suite.cells += (
                caselist.case_cells(self, case, ("cases", i), suite) if "expect" in case else []
            )
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
                    + suggest(o["reference"], ref_ids),
                )
            profs = o.get("profiles", "any")
            if profs != "any":
                for j, p in enumerate(profs):
                    if p not in profiles:
                        self.error(
                            (*path, "profiles", j),
                            f"unknown profile {excerpt(p)}; " + profiles_hint(profiles, p),
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
                    + suggest(address, list(ADDRESS_ROLES)),
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
                    + suggest(port, valid),
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
                + suggest(call, [*CALLS, *PORT_CALLS, *extra]),
            )
            return None
        if sock not in sockets and not (sock.endswith(".conn") and sock[:-5] in sockets):
            valid = sorted(sockets) + [
                f"{name}.conn (after 'accept {name}')" for name in sorted(sockets)
            ]
            self.error(
                path,
                f"unknown socket {excerpt(sock)} in step {excerpt(text)}; " + suggest(sock, valid),
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
                f"step {excerpt(text)}: {call} needs {what}; " + suggest(argument, needs[call]),
            )
            return None
        if call == "bind" and argument not in ("", UNTIL_FREE):
            self.error(
                path,
                f"step {excerpt(text)}: bind takes no argument or {UNTIL_FREE!r} (retry until "
                "the port is free, a slow cell); " + suggest(argument, [UNTIL_FREE]),
            )
            return None
        if call not in needs and call != "bind" and argument:
            self.error(path, f"step {excerpt(text)}: {call} takes no argument")
            return None
        return Step(call, sock, argument)


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
    builder = Builder(src, filename)
    suite = builder.build()
    if builder.errors:
        errors = sorted(set(builder.errors), key=lambda e: (e.line, e.column, e.message))
        raise CaseFileError(errors)
    suite.cells[:] = _shared(suite.cells)
    return suite


def _shared(cells: list[Cell]) -> list[Cell]:
    """The cells with their equal parts made one object: a grid's cells repeat a few
    dozen steps, sockets and expectations thousands of times. The same values; half the
    memory, and the cached suite unpickles 3x faster (pickle writes a shared object once)."""
    seen: dict[Any, Any] = {}

    def one(value: Any) -> Any:
        return seen.setdefault(value, value)

    return [
        dataclasses.replace(
            cell,
            sockets=one(tuple(one(s) for s in cell.sockets)),
            steps=one(tuple(one(s) for s in cell.steps)),
            expectations=one(tuple(one(e) for e in cell.expectations)),
            variant_fields=one(cell.variant_fields),
            position=one(cell.position),
            suite=one(cell.suite),
            variant=one(cell.variant),
            profile=one(cell.profile),
        )
        for cell in cells
    ]


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
