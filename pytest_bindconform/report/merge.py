"""Several host reports -> one matrix: rows are cells, columns are hosts.

A column is a host run under one gate and isolation mode; reports of one host
may be merged if they hold different cells. What every host shares (the cell's
name, grid position, expectations) is stored once per row, not once per host.
Anything that would silently lose or mix data (one cell twice for one host,
other format versions, other case files) is refused with a message naming the
files.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from .. import __version__, recommend
from . import model


class MergeError(Exception):
    pass


def host_key(info: dict[str, Any]) -> str:
    h = info["host"]
    return (
        f"{h['os']} {h['os_release']} ({h['kernel']}, {h['machine']}) python {h['python']} "
        f"gate={info['gate']} isolation={info['isolation']}"
    )


def read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise MergeError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise MergeError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None


def load(paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    """Read and check every input before merging any."""
    docs = []
    for path in paths:
        doc = read(path)
        if not isinstance(doc, dict) or "format" not in doc:
            raise MergeError(f"{path}: not a bindconform report (no 'format' field)")
        docs.append((str(path), doc))
    first, fmt = docs[0][0], docs[0][1]["format"]
    for name, doc in docs[1:]:
        if doc["format"] != fmt:
            raise MergeError(
                f"{name} has report format {doc['format']!r} but {first} has "
                f"format {fmt!r}: regenerate them with one pytest-bindconform version"
            )
    if fmt != model.FORMAT:
        raise MergeError(
            f"{first}: report format {fmt!r}; this pytest-bindconform "
            f"({__version__}) reads format {model.FORMAT}"
        )
    for name, doc in docs:
        if doc.get("kind") == "merged":
            raise MergeError(f"{name}: is a merged report; merge the host reports it came from")
        found = model.problems(doc)
        if found:
            shown = "\n  ".join(found[:10]) + (
                f"\n  … {len(found) - 10} more" if found[10:] else ""
            )
            raise MergeError(f"{name}: not a valid bindconform host report:\n  {shown}")
    return docs


CELL = ("id", "suite", "name", "key", "variant", "profile", "line", "grid")  # same on every host


def merge(docs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    hosts: dict[str, dict[str, Any]] = {}
    suites: dict[str, Any] = {}
    cells: dict[str, dict[str, Any]] = {}
    full: dict[tuple[str, str], dict[str, Any]] = {}  # (cell, host) -> that host's result
    owner: dict[tuple[str, str], str] = {}  # (host, cell) -> file
    said: dict[tuple[str, str], str] = {}  # (cell, oracle) -> file whose expectation we kept
    first: dict[str, str] = {}  # suite -> file whose oracle table we kept
    for name, doc in docs:
        key = host_key(doc["run_info"])
        hosts.setdefault(key, {"key": key, "run_info": doc["run_info"], "sources": []})
        hosts[key]["sources"].append(name)
        for sid, suite in doc["suites"].items():
            kept = suites.setdefault(sid, suite)
            first.setdefault(sid, name)
            if kept["oracles"] != suite["oracles"]:  # the provenance texts live only there
                raise MergeError(
                    f"{name}: the oracles of suite {sid!r} (their provenance) differ from "
                    f"those in {first[sid]}: the reports come from different case files; "
                    "rerun with the same ones"
                )
        for r in doc["results"]:
            if (key, r["id"]) in owner:
                raise MergeError(
                    f"{owner[key, r['id']]} and {name} both hold cell {r['id']!r} "
                    f"for host {key!r}; merging would overwrite one: drop one file"
                )
            owner[key, r["id"]] = name
            row = cells.setdefault(
                r["id"], {**{k: r[k] for k in CELL if k in r}, "expected": {}, "hosts": {}}
            )
            for oid, exp in r["expected"].items():
                kept = row["expected"].setdefault(oid, exp)
                said.setdefault((r["id"], oid), name)
                if kept != exp:
                    raise MergeError(
                        f"{name}: oracle {oid!r} expects {token(exp)} of {r['id']!r} but "
                        f"{said[r['id'], oid]} says {token(kept)}: the reports come from "
                        "different case files; rerun with the same ones"
                    )
            row["hosts"][key] = {}
            full[r["id"], key] = r
    rows = list(cells.values())
    leads = recommend.merged([(host_key(d["run_info"]), d) for _, d in docs])
    for row in rows:  # a host keeps only what its cell row does not already say
        for key in row["hosts"]:
            r = full[row["id"], key]
            row["hosts"][key] = {k: v for k, v in r.items() if k not in row or row[k] != v}
    return {
        "format": model.FORMAT,
        "kind": "merged",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "plugin_version": __version__,
        "hosts": list(hosts.values()),
        "suites": suites,
        "cells": rows,
        "differences": [c["id"] for c in rows if len(observations(c)) > 1],
        "errata": model.errata(((k, full[c["id"], k]) for c in rows for k in c["hosts"]), suites),
        "summary": {
            k: model.summarize([full[c["id"], k] for c in rows if k in c["hosts"]]) for k in hosts
        },
        **({"recommendations": leads} if leads else {}),
    }


def result(row: dict[str, Any], key: str) -> dict[str, Any]:
    """One host's whole result for a merged cell row: the row's fields, then the host's own."""
    return {**{k: v for k, v in row.items() if k != "hosts"}, **row["hosts"][key]}


def token(expectation: dict[str, Any]) -> str:
    receiver = expectation.get("receiver")
    return model.token(expectation) + (f" (received by {receiver})" if receiver else "")


def observations(row: dict[str, Any]) -> set[str]:
    return {r["observed"]["outcome"] for r in row["hosts"].values() if r.get("observed")}


def merge_files(paths: list[Path]) -> dict[str, Any]:
    return merge(load(paths))
