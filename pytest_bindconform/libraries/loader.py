"""Read the library profiles (YAML) into frozen records, with file:line errors.

The YAML loader and the schema-error wording are the case files' own (yamlsrc, caseschema), so
a profile author meets the same messages as a case author.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from .. import suitecache
from ..caseschema import _describe, _leaf_errors
from ..yamlsrc import CaseError, CaseFileError, Located, Path, load

if TYPE_CHECKING:
    import jsonschema

DATA = "data"
SCHEMA = "library.schema.json"
# A source must stay what the reader saw: a tag or a commit, never a moving branch.
MOVING_REFS = {"main", "master", "HEAD", "develop", "trunk", "default"}
_REF = re.compile(r"^https://github\.com/[^/]+/[^/]+/blob/([^/]+)/")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class LibraryProfile:
    id: str  # e.g. "asyncio.create_server"
    name: str  # "CPython asyncio"
    call: str  # "loop.create_server(host, port)"
    version: str  # version the source describes
    transport: str  # "tcp" | "udp"
    options: dict[str, tuple[str, ...]]  # os family -> raw option names; absent OS = unknown
    v6only: dict[str, bool | None]  # os family -> IPV6_V6ONLY it sets (None: leaves the default)
    source: str  # public URL (with line anchor) of the code that sets them
    basis: str  # "described"
    evidence: tuple[str, ...] = ()  # further source lines behind the per-OS claims
    fails: dict[str, str] = field(default_factory=dict)  # os family -> error: the call refuses
    notes: str = ""
    threads: tuple[str, ...] = ()  # public issue / pull-request URLs
    factory: str | None = None  # name of the real call on this host (standard library only)
    same_in: tuple[str, ...] = ()  # other releases whose source was read and sets the same
    file: str = ""  # data file and line the profile was read from


@cache
def _validator() -> jsonschema.protocols.Validator:
    import jsonschema  # only when a data file is read: the shipped ones are cached

    schema = json.loads(resources.files(__package__).joinpath(SCHEMA).read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def _url_error(error: jsonschema.ValidationError, src: Located, filename: str) -> list[CaseError]:
    """The only patterns in the schema are URLs: say what a valid one looks like."""
    if error.validator != "pattern":
        return []
    path = tuple(error.absolute_path)
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    wanted = (
        "a public issue or pull-request URL (https://github.com/... or https://bugs.python.org/...)"
        if "threads" in path
        else "a GitHub source URL pinned at a tag or commit, with a line anchor: "
        "https://github.com/OWNER/REPO/blob/TAG/PATH#L10 or #L10-L12"
    )
    return [CaseError(filename, *src.where(path), f"{where}: {error.instance!r} is not {wanted}")]


def _check(src: Located, filename: str) -> list[CaseError]:
    errors: list[CaseError] = []
    for error in _validator().iter_errors(src.data):
        for leaf in _leaf_errors(error):
            errors += _url_error(leaf, src, filename) or _describe(leaf, src, filename)
    if errors:
        return sorted(set(errors), key=lambda e: (e.line, e.column, e.message))
    for i, entry in enumerate(src.data["profiles"]):
        if not _ID.match(entry["id"]):
            errors.append(
                CaseError(
                    filename,
                    *src.where(("profiles", i, "id")),
                    f"profile id {entry['id']!r} is not valid (letters, digits, '.', '_' and "
                    "'-', starting with a letter or digit)",
                )
            )
        urls: list[tuple[Path, str]] = [(("profiles", i, "source"), entry["source"])]
        urls += [
            (("profiles", i, "evidence", j), url) for j, url in enumerate(entry.get("evidence", []))
        ]
        for path, url in urls:
            match = _REF.match(url)
            if match and match.group(1) in MOVING_REFS:
                errors.append(
                    CaseError(
                        filename,
                        *src.where(path),
                        f"{url!r} points at the branch {match.group(1)!r}, whose lines move; "
                        "pin a tag or a commit",
                    )
                )
        both = set(entry["options"]) & set(entry.get("fails", {}))
        for os_name in sorted(both):
            errors.append(
                CaseError(
                    filename,
                    *src.where(("profiles", i, "fails", os_name), key=True),
                    f"{os_name!r} is under both options and fails: a call that fails sets nothing",
                )
            )
    return errors


def _profile(entry: dict[str, Any], top: dict[str, Any], where: str) -> LibraryProfile:
    return LibraryProfile(
        id=entry["id"],
        name=entry.get("name", top["name"]),
        call=entry["call"],
        version=entry.get("version", top["version"]),
        transport=entry["transport"],
        options={os: tuple(opts) for os, opts in entry["options"].items()},
        v6only=dict(entry.get("v6only", {})),
        source=entry["source"],
        basis="described",
        evidence=tuple(entry.get("evidence", ())),
        fails=dict(entry.get("fails", {})),
        notes=entry.get("notes", ""),
        threads=tuple(entry.get("threads", ())),
        factory=entry.get("factory"),
        same_in=tuple(entry.get("same_in", top.get("same_in", ()))),
        file=where,
    )


def load_file(text: str, filename: str) -> list[LibraryProfile]:
    """Profiles of one data file; CaseFileError lists every problem as file:line:column."""
    src = load(text, filename)
    errors = _check(src, filename)
    if errors:
        raise CaseFileError(errors)
    top = src.data
    return [
        _profile(entry, top, f"{filename}:{src.where(('profiles', i))[0]}")
        for i, entry in enumerate(top["profiles"])
    ]


def check_unique(loaded: list[LibraryProfile]) -> None:
    """Ids name candidates in reports: one id, one call, across all files."""
    seen: dict[str, str] = {}
    errors: list[CaseError] = []
    for profile in loaded:
        where, line = profile.file.rsplit(":", 1)
        if profile.id in seen:
            message = f"duplicate profile id {profile.id!r} (first at {seen[profile.id]})"
            errors.append(CaseError(where, int(line), 1, message))
        seen.setdefault(profile.id, profile.file)
    if errors:
        raise CaseFileError(errors)


@cache
def _shipped() -> tuple[LibraryProfile, ...]:
    """Read and validated once, then taken from the suites' cache while the data files,
    the schema and the code that reads them are unchanged: every process of a run (each
    xdist worker, each owner zygote) would otherwise parse them and import jsonschema."""
    package = resources.files(__package__)
    files = sorted(
        (item for item in package.joinpath(DATA).iterdir() if item.name.endswith(".yaml")),
        key=lambda item: item.name,
    )
    texts = [(item.name, item.read_text(encoding="utf-8")) for item in files]
    key = hashlib.sha256(sys.version.encode())
    for code in (package.joinpath("loader.py"), package.joinpath(SCHEMA)):
        key.update(code.read_bytes())
    key.update(resources.files("pytest_bindconform").joinpath("yamlsrc.py").read_bytes())
    for name, text in texts:
        key.update(f"\0{name}\0{text}".encode())
    return suitecache.cached(key.digest(), tuple, lambda: _read(texts))


def _read(texts: list[tuple[str, str]]) -> tuple[LibraryProfile, ...]:
    found: list[LibraryProfile] = []
    errors: list[CaseError] = []
    for name, text in texts:
        display = f"pytest_bindconform/libraries/{DATA}/{name}"  # same on every OS
        try:
            found += load_file(text, display)
        except CaseFileError as exc:
            errors += exc.errors
    if errors:
        raise CaseFileError(errors)
    check_unique(found)
    return tuple(found)


def profiles() -> list[LibraryProfile]:
    """Every shipped profile, in file order (a broken data file raises CaseFileError)."""
    return list(_shipped())
