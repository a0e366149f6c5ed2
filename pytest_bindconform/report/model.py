"""The report document: run info, suite metadata, one result per cell, counts per oracle.

Results are the runner's records (builtins that crossed xdist as is) minus
repetition: an expectation names its oracle, whose provenance the suite's oracle
table holds once, and a call that succeeded carries no empty error text. Cells
that left no record still get a full result here, so a crash or an interrupt
can never make a cell disappear from a report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from functools import cache
from importlib import resources
from typing import Any

from .. import probe, recommend, runner
from ..host import Host
from ..model import Cell, Oracle, Suite
from ..oracles import NOT_RUN, applies

FORMAT = 2  # 2: provenance by oracle key; delivery required; oracle sysctl; lean merged hosts
STATUSES = ("pass", "fail", "skip", "error", "ungated")
VERDICTS = ("agree", "disagree", "no-claim", "not-run")
NO_RESULT = "no result: the worker running it crashed or the run was interrupted"


def suite_info(suite: Suite) -> dict[str, Any]:
    """What a reader needs to judge a suite's results: where each expectation comes from."""
    return {
        "title": suite.title,
        "description": suite.description,
        "path": suite.path,
        "references": [asdict(ref) for ref in suite.references],
        "profiles": {pid: p.description for pid, p in suite.profiles.items()},
        "oracles": {
            oid: {
                "kind": o.kind,
                "source": o.source,
                "provenance": o.provenance,
                "reference": o.reference,
                "table": o.table,
                "applies": {
                    "os": o.os,
                    "min_version": o.min_version,
                    "max_version": o.max_version,
                    "sysctl": dict(o.sysctl),
                },
                "profiles": None if o.profiles is None else list(o.profiles),
            }
            for oid, o in suite.oracles.items()
        },
        "grid": suite.grid,
        "facts": [dict(f) for f in suite.facts],
    }


def oracle_applies(info: dict[str, Any], host: dict[str, Any]) -> bool:
    """Does an oracle of a report's suite metadata apply to a report's host?"""
    rng = info["applies"]
    oracle = Oracle(
        "",
        info["kind"],
        info["source"],
        rng["os"],
        min_version=rng["min_version"],
        max_version=rng["max_version"],
        sysctl=tuple(rng.get("sysctl", {}).items()),
    )
    return applies(oracle, host["os"], host["os_version"], host.get("sysctl"))


def missing_result(
    nodeid: str, cell: Cell, suite: Suite, host: Host, gate: str, status: str, reason: str
) -> dict[str, Any]:
    """A cell that ran nowhere (crash, interrupt, setup failure): same shape as a record."""
    result = runner.describe(cell, suite)
    profile = suite.profiles.get(cell.profile) if cell.profile else None
    try:
        sockets = [p.to_dict("unknown") for p in probe.plan(cell, profile, host)]
    except probe.Unrunnable:
        sockets = [runner.unplanned(spec) for spec in cell.sockets]
    verdicts = {
        oid: NOT_RUN
        for oid in result["expected"]
        if applies(suite.oracles[oid], host.os, host.os_version, host.sysctl)
    }
    claim = cell.expectation(gate)
    result.update(
        id=nodeid,
        scenario={
            "profile": cell.profile,
            "sockets": sockets,
            "steps": result.pop("steps_planned"),
            "under_test": result.pop("under_test"),
        },
        observed=None,
        verdicts=verdicts,
        gate=gate if claim is not None and claim.claims and gate in verdicts else None,
        status=status,
        reason=reason,
        duration=0.0,
    )
    return result


def orphan_result(nodeid: str, status: str, reason: str) -> dict[str, Any]:
    """A result for an item that is no cell: a broken case file, or a file that vanished."""
    path, _, name = nodeid.partition("::")
    return {
        "id": nodeid,
        "suite": None,
        "name": name,
        "key": name,
        "variant": "",
        "profile": None,
        "line": 0,
        "grid": None,
        "expected": {},
        "scenario": {"profile": None, "sockets": [], "steps": [], "under_test": ""},
        "observed": None,
        "verdicts": {},
        "gate": None,
        "status": status,
        "reason": reason or f"{path}: no result",
        "duration": 0.0,
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Cells per status, and per oracle how many cells agree, disagree, were not run."""
    status = dict.fromkeys(STATUSES, 0)
    for result in results:
        status[result["status"]] += 1
    return {
        "cells": len(results),
        "status": status,
        "oracles": verdict_counts(results),
        "resemblance": resemblance(results),
    }


def verdict_counts(results: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per oracle, how many of these cells agree, disagree, ... (summarize's 'oracles')."""
    per_oracle: dict[str, dict[str, int]] = {}
    for result in results:
        for oid, verdict in result["verdicts"].items():
            per_oracle.setdefault(oid, dict.fromkeys(VERDICTS, 0))[verdict] += 1
    return dict(sorted(per_oracle.items()))


def resemblance(results: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Which source does this host really follow? Every oracle, whatever OS it is for,
    against every cell that ran here and on which it makes a claim (for another OS's
    table, through the cell's profile). A finding, never a verdict."""
    out: dict[str, dict[str, int]] = {}
    for result in results:
        observed = (result.get("observed") or {}).get("outcome")
        if observed is None or result["status"] in ("skip", "error"):
            continue
        for oid, exp in result["expected"].items():
            if exp["outcome"] in ("n/a", "unknown"):
                continue
            counts = out.setdefault(oid, {"agree": 0, "disagree": 0})
            counts["agree" if exp["outcome"] == observed else "disagree"] += 1
    return dict(sorted(out.items(), key=lambda kv: (-share(kv[1]), kv[0])))


def share(counts: dict[str, int]) -> float:
    total = counts["agree"] + counts["disagree"]
    return counts["agree"] / total if total else 0.0


def percent(counts: dict[str, int]) -> str:
    """agree / (agree + disagree) as every output prints it: a whole percent rounded half
    up in integers (no float or banker's rounding, so 78.5 is 79 everywhere), never 100%
    while a cell disagrees nor 0% while one agrees; '–' with nothing to compare."""
    agree, total = counts["agree"], counts["agree"] + counts["disagree"]
    if not total:
        return "–"
    whole = (200 * agree + total) // (2 * total)
    return f"{min(max(whole, 1 if agree else 0), 99 if agree < total else 100)}%"


def token(expectation: dict[str, Any]) -> str:
    """An expectation as the case files write it: 'ok*' = ok, undefined which socket receives."""
    return str(expectation["outcome"]) + ("*" if expectation["flags"] else "")


def errata(
    pairs: Iterable[tuple[str, dict[str, Any]]], suites: dict[str, Any]
) -> list[dict[str, Any]]:
    """(host, result) pairs -> where a documented table disagrees with a host it applies to."""
    out = []
    for host, r in pairs:
        oracles = suites.get(r["suite"] or "", {}).get("oracles", {})
        for oid, verdict in r["verdicts"].items():
            if verdict == "disagree" and oracles.get(oid, {}).get("kind") == "document":
                out.append(
                    {
                        "id": r["id"],
                        "host": host,
                        "oracle": oid,
                        "documented": token(r["expected"][oid]),
                        "observed": r["observed"]["outcome"],
                        "provenance": oracles[oid]["provenance"],
                    }
                )
    return out


def lean(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the report stores it: each provenance text once per suite, not per cell.

    The record itself is left alone: the terminal explanation still reads it.
    """
    result = dict(record)
    result["expected"] = {oid: {**e, "provenance": oid} for oid, e in record["expected"].items()}
    if record["observed"]:
        steps = [
            {k: v for k, v in step.items() if k != "error" or v}
            for step in record["observed"]["steps"]
        ]
        result["observed"] = {**record["observed"], "steps": steps}
    return result


def build(
    run_info: dict[str, Any], suites: dict[str, dict[str, Any]], records: list[dict[str, Any]]
) -> dict[str, Any]:
    results = [lean(r) for r in records]
    document = {
        "format": FORMAT,
        "kind": "host",
        "run_info": run_info,
        "suites": suites,
        "results": results,
        "summary": summarize(results),
    }
    recommendations = recommend.build(results, run_info["host"]["os"])
    return {**document, "recommendations": recommendations} if recommendations else document


@cache
def schema() -> dict[str, Any]:
    text = resources.files("pytest_bindconform").joinpath("schema/report.schema.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _fast_check() -> Any:
    """jsonschema-rs, where installed (not on FreeBSD: no wheel): it says valid or not in
    1/300 of the time; the messages of an invalid report still come from jsonschema."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.validator_for(schema()).is_valid


def problems(document: Any) -> list[str]:
    """Schema violations of a report, as 'where: what' lines (empty: valid)."""
    fast = _fast_check()
    if fast is not None and fast(document):
        return []
    import jsonschema  # only to say what is wrong: a valid report never needs it

    validator = jsonschema.Draft202012Validator(schema())
    found = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in found]


def dumps(document: dict[str, Any]) -> str:
    """Indented JSON, except one line per result: a fifth smaller, and diffs show cells."""
    parts = []
    for key, value in document.items():
        if key in ("results", "cells") and value:
            rows = ",\n  ".join(
                json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in value
            )
            text = f"[\n  {rows}\n ]"
        else:
            text = json.dumps(value, indent=1, ensure_ascii=False).replace("\n", "\n ")
        parts.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"
