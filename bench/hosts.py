"""Benchmark and test fixtures: N host reports made from one real host report.

A real run of cases/ here gives every cell's shape; each made-up host changes
only what differs between real hosts: OS and release, Python, privilege, and
outcomes (where the host's own gate oracle claims an outcome, the host does
what it says, and a few cells per host differ at random, as hosts of one OS do
in practice). Verdicts and statuses are recomputed from the suites' oracles,
so errata and differences arise as they would. Every report made here says
so in its plugin_version ('0.1.0+fixture').
"""

from __future__ import annotations

import copy
import random
from typing import Any

from pytest_bindconform.report import model

# (os, os_version, os_release, kernel, machine, python, admin)
CONFIGS = [
    ("linux", "6.8.0-1017-azure", "Ubuntu 24.04.1 LTS", "Linux 6.8.0", "x86_64", "3.10.15", False),
    ("darwin", "14.7", "14.7", "Darwin 23.6.0", "arm64", "3.10.11", False),
    ("windows", "10.0.20348", "2022Server", "Windows 10", "AMD64", "3.10.11", False),
    ("linux", "6.8.0-1017-azure", "Ubuntu 24.04.1 LTS", "Linux 6.8.0", "x86_64", "3.13.1", True),
    ("windows", "10.0.20348", "2022Server", "Windows 10", "AMD64", "3.13.1", False),
    ("freebsd", "14.1-RELEASE", "14.1-RELEASE", "FreeBSD 14.1", "amd64", "3.11.10", False),
    ("darwin", "14.7", "14.7", "Darwin 23.6.0", "arm64", "3.13.1", True),
    ("linux", "6.8.0-1017-azure", "Ubuntu 24.04.1 LTS", "Linux 6.8.0", "x86_64", "3.13.1", False),
    ("windows", "10.0.26100", "2025Server", "Windows 10", "AMD64", "3.13.1", False),
    ("freebsd", "14.1-RELEASE", "14.1-RELEASE", "FreeBSD 14.1", "amd64", "3.11.10", True),
    ("darwin", "15.1", "15.1", "Darwin 24.1.0", "arm64", "3.12.7", False),
    ("linux", "6.8.0-1017-azure", "Ubuntu 24.04.1 LTS", "Linux 6.8.0", "x86_64", "3.10.15", True),
]
NEXT_PYTHON = {"3.10": "3.11.9", "3.11": "3.12.7", "3.12": "3.11.9", "3.13": "3.12.7"}
OUTCOMES = ("ok", "INUSE", "ACCESS", "INVAL")
WINDOWS_ROLES = {"reuse": "SO_REUSEADDR", "exclusive": "SO_EXCLUSIVEADDRUSE", "default": ""}
CLAIMS = {"ok", "INUSE", "ACCESS", "ADDRNOTAVAIL", "INVAL", "NOTSUP"}


def config(n: int) -> tuple[str, str, str, str, str, str, bool]:
    os_name, version, rel, kernel, machine, python, admin = CONFIGS[n % len(CONFIGS)]
    for _ in range(n // len(CONFIGS)):  # hosts 13..24: the first 12 under other Pythons
        python = NEXT_PYTHON[".".join(python.split(".")[:2])]
    return os_name, version, rel, kernel, machine, python, admin


def made_up(real: dict[str, Any], n: int, differ: float = 0.02) -> dict[str, Any]:
    """Host number n, made from a real host report."""
    os_name, version, rel, kernel, machine, python, admin = config(n)
    doc = copy.deepcopy(real)
    info = doc["run_info"]
    info["host"].update(
        os=os_name, os_version=version, os_release=rel, kernel=kernel, machine=machine,
        python=python, admin=admin,
    )  # fmt: skip
    if os_name != "linux":
        info["host"]["sysctl"] = {}
    info["python"] = python
    info["gate"] = info["gates"].get(os_name, os_name)
    info["plugin_version"] = f"{info['plugin_version']}+fixture"
    if os_name == "windows":  # the portable roles resolve to Windows options there
        for r in doc["results"]:
            for sock in r["scenario"]["sockets"]:
                sock["options"] = [WINDOWS_ROLES[role] for role in sock.get("roles", [])
                                   if WINDOWS_ROLES.get(role)]  # fmt: skip
    rng = random.Random(n)
    for r in doc["results"]:
        rehost(r, doc["suites"], info, rng, differ)
    doc["summary"] = model.summarize(doc["results"])
    return doc


def rehost(
    r: dict[str, Any], suites: dict[str, Any], info: dict[str, Any], rng: random.Random, p: float
) -> None:
    """One result as the made-up host would have it."""
    host, gate = info["host"], info["gate"]
    oracles = suites.get(r["suite"] or "", {}).get("oracles", {})
    applying = [o for o in r["expected"] if o in oracles and model.oracle_applies(oracles[o], host)]
    if r["observed"] is None:
        r["verdicts"] = dict.fromkeys(applying, "not-run")
        r["gate"] = gate if gate in r["expected"] else None
        return
    seen = r["observed"]["outcome"]
    claim = r["expected"].get(gate, {}).get("outcome")
    if claim in CLAIMS:
        seen = claim
    if rng.random() < p:
        seen = rng.choice([o for o in OUTCOMES if o != seen])
    r["observed"] = copy.deepcopy(r["observed"])
    steps = r["observed"]["steps"]
    if steps:
        steps[-1].update(outcome=seen, errno=0 if seen == "ok" else 48)
    verdicts = {}
    for oid in applying:
        expected = r["expected"][oid]["outcome"]
        verdicts[oid] = (
            "no-claim" if expected not in CLAIMS else "agree" if expected == seen else "disagree"
        )
    r["verdicts"] = verdicts
    r["gate"] = gate if gate in verdicts and verdicts[gate] != "no-claim" else None
    r["observed"]["outcome"] = seen
    if r["gate"] is None:
        r.update(status="ungated", reason="no gate claim for this cell")
    elif verdicts[gate] == "agree":
        r.update(status="pass", reason="")
    else:
        r.update(status="fail", reason=f"{gate} expects {r['expected'][gate]['outcome']}")
