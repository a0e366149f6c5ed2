"""Several host reports -> one matrix: rows are cells, columns are hosts.

A column is a host run under one gate, isolation mode and privilege; reports of
one host may be merged if they hold different cells. The merged report is the
matrix a person reads, sized for any number of hosts: what every host shares
(the cell's name, grid position, expectations) is stored once per row, and each
row lists its distinct outcomes once with the hosts that saw them. Each host's
call-by-call trace stays in its host report (hosts[].sources names it).

Inputs are read one at a time, each checked whole (schema, format, kind) and
folded in before the next is read, so memory grows with the matrix, not with
the inputs. Anything that would silently lose or mix data (one cell twice for
one host, other format versions, other case files) is refused with a message
naming the files; nothing is written unless every input passed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .. import __version__, foretold, recommend
from . import labels, model

fast_loads: Callable[[str], Any]
try:  # parses a host report in half the time of the stdlib (bench/bench_merge.py prints both)
    from orjson import loads as fast_loads
except ImportError:  # no wheel (FreeBSD): the stdlib, same result
    fast_loads = json.loads


class MergeError(Exception):
    pass


def host_key(info: dict[str, Any]) -> str:
    """The matrix column: one host, under one gate, isolation and privilege."""
    h = info["host"]
    return (
        f"{h['os']} {h['os_release']} ({h['kernel']}, {h['machine']}) python {h['python']} "
        f"{'privileged' if h.get('admin') else 'unprivileged'} "
        f"gate={info['gate']} isolation={info['isolation']}"
    )


@contextlib.contextmanager
def acyclic() -> Iterator[None]:
    """The cycle collector paused while a matrix is built and drawn. Parsed JSON holds no
    cycles (reference counting frees it), and each collection walks the whole growing
    matrix: with it on, every input costs more than the one before (12 hosts: twice the
    CPU time, most of it in json.loads)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MergeError(f"{path}: cannot read: {exc}") from None
    try:
        return fast_loads(text)
    except ValueError:
        pass  # the stdlib says where and what was expected (and reads what orjson refuses)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MergeError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None


def check(name: str, doc: Any, first: tuple[str, Any] | None, simulated: bool = False) -> None:
    """One input, whole: a valid host report of the format of the first and of this version.
    A simulated run (--bindconform-simulate) is refused unless `simulated`: its outcomes come
    from a model, never from system calls."""
    if not isinstance(doc, dict) or "format" not in doc:
        raise MergeError(f"{name}: not a bindconform report (no 'format' field)")
    if first is not None and doc["format"] != first[1]:
        raise MergeError(
            f"{name} has report format {doc['format']!r} but {first[0]} has "
            f"format {first[1]!r}: regenerate them with one pytest-bindconform version"
        )
    if doc["format"] != model.FORMAT:
        raise MergeError(
            f"{first[0] if first else name}: report format {doc['format']!r}; this "
            f"pytest-bindconform ({__version__}) reads format {model.FORMAT}"
        )
    if doc.get("kind") == "merged":
        raise MergeError(f"{name}: is a merged report; merge the host reports it came from")
    run_info = doc.get("run_info")
    fake = run_info.get("simulated") if isinstance(run_info, dict) else None
    if fake and not simulated:
        raise MergeError(
            f"{name}: is a simulated run ({fake}): its outcomes come from a model, not from "
            "system calls, so it is never merged into a conformance matrix (a test harness "
            "may merge simulated legs with --simulated; the result is labelled simulated)"
        )
    found = model.problems(doc)
    if found:
        shown = "\n  ".join(found[:10]) + (f"\n  … {len(found) - 10} more" if found[10:] else "")
        raise MergeError(f"{name}: not a valid bindconform host report:\n  {shown}")


def load(paths: list[Path], simulated: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """Read and check every input (all of them in memory: for a few small reports)."""
    docs: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        doc = read(path)
        check(str(path), doc, (docs[0][0], docs[0][1]["format"]) if docs else None, simulated)
        docs.append((str(path), doc))
    return docs


CELL = ("id", "suite", "name", "key", "variant", "profile", "line", "grid")  # same on every host


def shown(record: dict[str, Any]) -> dict[str, Any]:
    """What the matrix keeps of one host's result: what a reader compares between hosts."""
    return kept(record)[1]


NONE = ("",)  # a key part for a field the result does not have (never equal to a value)


def kept(record: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(key, shown): equal keys for equal shown results, made without sorting or repr
    (it runs once per host and cell: 90,000 times for 12 hosts)."""
    seen = record["observed"]
    verdicts = record["verdicts"]
    out: dict[str, Any] = {
        "status": record["status"],
        "outcome": seen["outcome"] if seen else None,
        "verdicts": verdicts,
        "gate": record["gate"],
    }
    reason: Any = NONE
    receiver: Any = NONE
    failed: Any = NONE
    model: Any = NONE
    if record["reason"]:
        reason = out["reason"] = record["reason"]
    if seen:
        delivery = seen.get("delivery")
        if delivery:
            receiver = out["receiver"] = delivery["receiver"]
        for step in seen["steps"]:
            if step["outcome"] != "ok":
                error = step.get("error") or "errno"
                failed = out["failed"] = f"{step['call']} {step['socket']}: {error} {step['errno']}"
                break
    if record.get("model"):
        m = record["model"]
        out["model"] = {"outcome": m["outcome"], "verdict": m["verdict"]}
        model = (m["outcome"], m["verdict"])
    key = (out["status"], out["outcome"], tuple(verdicts.items()), out["gate"])
    return (*key, reason, receiver, failed, model), out


class Matrix:
    """The merged report under construction, fed one host report at a time."""

    def __init__(self, simulated: bool = False) -> None:
        self.simulated = simulated  # accept --bindconform-simulate runs (test harness only)
        self.hosts: dict[str, dict[str, Any]] = {}
        self.suites: dict[str, Any] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}  # cell -> shown -> group
        self.owner: dict[str, dict[str, str]] = {}  # host -> cell -> file
        self.said: dict[tuple[str, str], str] = {}  # (cell, oracle) -> file we kept it from
        self.first: dict[str, str] = {}  # suite -> file whose oracle table we kept
        self.errata: list[tuple[int, dict[str, Any]]] = []
        self.formats: tuple[str, Any] | None = None
        self.leads: list[tuple[str, dict[str, Any] | None]] = []  # host -> recommendations

    def add(self, name: str, doc: dict[str, Any]) -> None:
        check(name, doc, self.formats, self.simulated)
        self.formats = self.formats or (name, doc["format"])
        key = host_key(doc["run_info"])
        host = self.hosts.setdefault(
            key,
            {"key": key, "run_info": doc["run_info"], "sources": [], "resolves": {}},
        )
        index = list(self.hosts).index(key)
        host["sources"].append(name)
        self.leads.append((key, doc.get("recommendations")))
        host["summary"] = added(host.get("summary"), doc["summary"])
        for sid, suite in doc["suites"].items():
            kept = self.suites.setdefault(sid, suite)
            self.first.setdefault(sid, name)
            if kept["oracles"] != suite["oracles"]:  # the provenance texts live only there
                raise MergeError(
                    f"{name}: the oracles of suite {sid!r} (their provenance) differ from "
                    f"those in {self.first[sid]}: the reports come from different case files; "
                    "rerun with the same ones"
                )
        held = self.owner.setdefault(key, {})
        for r in doc["results"]:
            self._result(name, key, index, r, held)
            resolves(host["resolves"], r)
        self.errata += [
            (index, e) for e in model.errata((("", r) for r in doc["results"]), self.suites)
        ]

    def _result(
        self, name: str, key: str, index: int, r: dict[str, Any], held: dict[str, str]
    ) -> None:
        cid = r["id"]
        if cid in held:
            raise MergeError(
                f"{held[cid]} and {name} both hold cell {cid!r} "
                f"for host {key!r}; merging would overwrite one: drop one file"
            )
        held[cid] = name
        row = self.rows.get(cid)
        if row is None:
            row = self.rows[cid] = {**{k: r[k] for k in CELL if k in r}, "expected": {}}
            self._expected(name, cid, row, r)
        elif row["expected"] != r["expected"]:  # equal wherever the case files are
            self._expected(name, cid, row, r)
        same, mine = kept(r)
        groups = self.groups.get(cid)
        if groups is None:
            groups = self.groups[cid] = {}
        group = groups.get(same)
        if group is None:
            group = groups[same] = {"hosts": [], **mine}
        group["hosts"].append(index)

    def _expected(self, name: str, cid: str, row: dict[str, Any], r: dict[str, Any]) -> None:
        """Expectations of a cell are one per oracle and the same in every report."""
        for oid, exp in r["expected"].items():
            kept = row["expected"].setdefault(oid, exp)
            self.said.setdefault((cid, oid), name)
            if kept != exp:
                raise MergeError(
                    f"{name}: oracle {oid!r} expects {token(exp)} of {cid!r} but "
                    f"{self.said[cid, oid]} says {token(kept)}: the reports come from "
                    "different case files; rerun with the same ones"
                )

    def document(self) -> dict[str, Any]:
        keys = list(self.hosts)
        os_of = [h["run_info"]["host"]["os"] for h in self.hosts.values()]
        cells = []
        for cid, row in self.rows.items():
            row["results"] = sorted(self.groups[cid].values(), key=lambda g: g["hosts"])
            row["differ"] = differ(row["results"], os_of)
            cells.append(row)
        hosts = list(self.hosts.values())
        for h, label in zip(hosts, labels.host_labels([h["run_info"] for h in hosts]), strict=True):
            h["label"] = label
        leads = recommend.merged(self.leads, foretold.foretell(goal_files(self.leads)))
        return {
            "format": model.FORMAT,
            "kind": "merged",
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "plugin_version": __version__,
            "hosts": hosts,
            "suites": self.suites,
            "cells": cells,
            "differences": [c["id"] for c in cells if c["differ"]],
            "errata": errata_by_position(self.errata, self.rows),
            "summary": {keys[i]: h["summary"] for i, h in enumerate(hosts)},
            **({"recommendations": leads} if leads else {}),
        }


def goal_files(leads: list[tuple[str, dict[str, Any] | None]]) -> list[str]:
    """The goal suites' case files the hosts ran, as their cell ids name them."""
    found = {
        cell.partition("::")[0]
        for _, recs in leads
        for r in (recs or {}).get("goals", [])
        for cell in r["cells"] + r.get("not_run", [])
    }
    return sorted(found)


def resolves(into: dict[str, dict[str, str]], r: dict[str, Any]) -> None:
    """Which raw options each portable role became on this host, per profile."""
    profile = r["profile"]
    if not profile:
        return
    for sock in r["scenario"]["sockets"]:
        roles = sock.get("roles") or []
        if len(roles) == 1:
            into.setdefault(profile, {}).setdefault(
                roles[0], "+".join(sock["options"]) or "no option"
            )


def differ(results: list[dict[str, Any]], os_of: list[str]) -> str | None:
    """'os' where hosts of different OSes saw different things, 'host' where only hosts of
    one OS differ among themselves, None where every host that ran saw the same."""
    per_os: dict[str, set[tuple[Any, Any]]] = {}
    for g in results:
        if g["outcome"] is None:
            continue
        for h in g["hosts"]:
            per_os.setdefault(os_of[h], set()).add((g["outcome"], g.get("receiver")))
    if len(set().union(*per_os.values()) if per_os else set()) < 2:
        return None
    if len({frozenset(v) for v in per_os.values()}) > 1:
        return "os"
    return "host"


def added(total: dict[str, Any] | None, more: dict[str, Any]) -> dict[str, Any]:
    """The summary of a host from the summaries of its reports (disjoint sets of cells)."""
    if total is None:
        return more

    def plus(a: Any, b: Any) -> Any:
        if isinstance(a, dict):
            return {k: plus(a.get(k, 0), b.get(k, 0)) for k in dict.fromkeys([*a, *b])}
        return (a or 0) + (b or 0) if isinstance(b, int) else (a or b)

    out: dict[str, Any] = plus(total, more)
    out["resemblance"] = dict(
        sorted(out["resemblance"].items(), key=lambda kv: (-model.share(kv[1]), kv[0]))
    )
    return out


def position(row: dict[str, Any]) -> dict[str, str]:
    """A place in a suite's published grid (all variants and profiles), or a case key."""
    grid = row.get("grid")
    if grid:
        return {"row": grid["row_label"], "column": grid["column_label"]}
    return {"case": row["key"]}


def errata_by_position(
    found: list[tuple[int, dict[str, Any]]], rows: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One entry per grid position: each document, what it says and what which hosts saw."""
    out: dict[str, dict[str, Any]] = {}
    for host, e in found:
        row = rows[e["id"]]
        where = position(row)
        place = json.dumps([row["suite"], where])
        entry = out.setdefault(
            place, {"suite": row["suite"], "position": where, "cells": [], "documents": []}
        )
        if e["id"] not in entry["cells"]:
            entry["cells"].append(e["id"])
        said = (e["oracle"], e["documented"], e["observed"])
        doc = next(
            (
                d
                for d in entry["documents"]
                if (d["oracle"], d["documented"], d["observed"]) == said
            ),
            None,
        )
        if doc is None:
            doc = dict(zip(("oracle", "documented", "observed"), said, strict=True))
            doc.update(hosts=[], cells=0)
            entry["documents"].append(doc)
        if host not in doc["hosts"]:
            doc["hosts"].append(host)
        doc["cells"] += 1
    return list(out.values())


def result(row: dict[str, Any], index: int) -> dict[str, Any] | None:
    """What the matrix holds of host number index for a cell row (None: not in its report)."""
    return next((g for g in row["results"] if index in g["hosts"]), None)


def token(expectation: dict[str, Any]) -> str:
    receiver = expectation.get("receiver")
    return model.token(expectation) + (f" (received by {receiver})" if receiver else "")


def merge(docs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    matrix = Matrix()
    for name, doc in docs:
        matrix.add(name, doc)
    return matrix.document()


def merge_files(paths: list[Path], simulated: bool = False) -> dict[str, Any]:
    """Merge host reports read one at a time: memory holds the matrix and one input."""
    matrix = Matrix(simulated)
    with acyclic():
        for path in paths:
            matrix.add(str(path), read(path))
        merged = matrix.document()
    labels = sorted(
        {h["run_info"]["simulated"] for h in merged["hosts"] if h["run_info"].get("simulated")}
    )
    if labels:
        merged["simulated"] = "; ".join(labels)
    return merged
