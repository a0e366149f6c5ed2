"""Profiles, gate selection and verdicts: how an observation is judged.

Every oracle that applies to the host is compared; exactly one, the gate,
decides whether the cell passes. The others are findings, recorded as data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from .model import Cell, Expectation, Oracle, Profile
from .spread import holds as spread_holds
from .spread import text as spread_text

SHIPPED_PROFILES: dict[str, Profile] = {
    "reuseport": Profile(
        id="reuseport",
        description=(
            "SO_REUSEPORT equivalent: Windows SO_REUSEADDR ('I allow sharing and want to share') "
            "maps to POSIX SO_REUSEPORT; Windows SO_EXCLUSIVEADDRUSE maps to no option, because "
            "POSIX sockets are exclusive by default (docs/reference/posix-semantics.md)."
        ),
        windows={"default": (), "reuse": ("SO_REUSEADDR",), "exclusive": ("SO_EXCLUSIVEADDRUSE",)},
        posix={"default": (), "reuse": ("SO_REUSEPORT",), "exclusive": ()},
    ),
    "reuseaddr": Profile(
        id="reuseaddr",
        description=(
            "Naive port: Windows SO_REUSEADDR maps to POSIX SO_REUSEADDR, as code ported "
            "from Windows does; SO_EXCLUSIVEADDRUSE maps to no option."
        ),
        windows={"default": (), "reuse": ("SO_REUSEADDR",), "exclusive": ("SO_EXCLUSIVEADDRUSE",)},
        posix={"default": (), "reuse": ("SO_REUSEADDR",), "exclusive": ()},
    ),
}

DEFAULT_GATES: dict[str, str] = {
    # Table C of "Using SO_REUSEADDR and SO_EXCLUSIVEADDRUSE" is what current
    # Windows follows (Wine's ws2_32 tests, run on real Windows, agree with it).
    "windows": "ms-using-2003-same-user",
    "linux": "linux",
    "darwin": "darwin",
    "freebsd": "freebsd",
}

AGREE, DISAGREE, NO_CLAIM, NOT_RUN = "agree", "disagree", "no-claim", "not-run"


def parse_gates(entries: Iterable[str]) -> dict[str, str]:
    """Parse 'os=oracle' entries over the defaults; raise ValueError on junk."""
    gates = dict(DEFAULT_GATES)
    for entry in entries:
        for part in entry.replace(",", " ").split():
            os_name, sep, oracle = part.partition("=")
            if not sep or os_name not in DEFAULT_GATES or not oracle:
                raise ValueError(
                    f"bad gate {part!r}: expected OS=ORACLE with OS one of "
                    f"{', '.join(DEFAULT_GATES)}"
                )
            gates[os_name] = oracle
    return gates


@cache  # a handful of version strings, compared for every expectation of every cell
def version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.replace("-", ".").split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def settings_mismatch(oracle: Oracle, sysctl: Mapping[str, str] | None) -> str:
    """The host settings that differ from what the oracle's expectations assume."""
    if not sysctl:
        return ""
    wrong = [
        f"{k}={sysctl[k]} (expected {v})"
        for k, v in oracle.sysctl
        if k in sysctl and sysctl[k] != v
    ]
    return ", ".join(wrong)


def applies(
    oracle: Oracle, os_family: str, os_version: str, sysctl: Mapping[str, str] | None = None
) -> bool:
    if oracle.os != os_family:
        return False
    if oracle.sysctl and settings_mismatch(oracle, sysctl):
        return False
    if not (oracle.min_version or oracle.max_version):
        return True
    have = version_tuple(os_version)
    if oracle.min_version and have < version_tuple(oracle.min_version):
        return False
    return not (oracle.max_version and have > version_tuple(oracle.max_version))


def for_settings(
    gate: str,
    oracles: Mapping[str, Oracle],
    os_family: str,
    os_version: str,
    sysctl: Mapping[str, str] | None,
) -> str:
    """The gate on this host's settings. Where the gate assumes other settings
    (applies.sysctl), the suite's one oracle for the same OS, assuming the same settings
    with this host's values, stands in for it: on a net.ipv6.bindv6only=1 host,
    `linux-bindv6only` gates where `linux` assumes 0. Without exactly one, the gate stays
    (and its cells are skipped saying which setting differs)."""
    base = oracles.get(gate)
    if base is None or not settings_mismatch(base, sysctl):
        return gate
    keys = {k for k, _ in base.sysctl}
    twins = [
        oid
        for oid, o in oracles.items()
        if o.os == base.os
        and {k for k, _ in o.sysctl} == keys
        and applies(o, os_family, os_version, sysctl)
    ]
    return twins[0] if len(twins) == 1 else gate


def verdict(
    expectation: Expectation | None,
    observed: str | None,
    receiver: str | None = None,
    delivery: Mapping[str, Any] | None = None,
) -> str:
    if observed is None:
        return NOT_RUN
    if expectation is None or not expectation.claims:
        return NO_CLAIM
    if expectation.outcome != observed:
        return DISAGREE
    if expectation.receiver and expectation.receiver != (receiver or "none"):
        return DISAGREE
    if expectation.spread and not spread_holds(
        expectation.spread, expectation.fairness_min, delivery
    ):
        return DISAGREE
    return AGREE


@dataclass(frozen=True)
class Judgement:
    verdicts: dict[str, str]  # oracle id -> agree/disagree/no-claim
    gate: str | None  # the gate oracle, when it makes a claim on this cell
    status: str  # pass | fail | ungated
    reason: str


def judge(
    cell: Cell,
    observed: str,
    oracles: Mapping[str, Oracle],
    gate: str,
    os_family: str,
    os_version: str,
    receiver: str | None = None,
    sysctl: Mapping[str, str] | None = None,
    delivery: Mapping[str, Any] | None = None,
) -> Judgement:
    """Compare the observation with every applicable oracle; only the gate decides."""
    twin = for_settings(gate, oracles, os_family, os_version, sysctl)
    if cell.expectation(twin) is not None:  # where the twin says nothing, the gate skips
        gate = twin
    verdicts = {}
    for exp in cell.expectations:
        oracle = oracles[exp.oracle]
        if applies(oracle, os_family, os_version, sysctl):
            verdicts[exp.oracle] = verdict(exp, observed, receiver, delivery)
    gate_exp = cell.expectation(gate)
    mismatch = settings_mismatch(oracles[gate], sysctl) if gate_exp is not None else ""
    if mismatch:
        return Judgement(
            verdicts,
            None,
            "skip",
            f"observed {observed}, but gate oracle {gate!r} assumes other host settings: "
            f"{mismatch}; change them (sysctl -w) or run with --bindconform-isolate=netns",
        )
    if gate_exp is None or not gate_exp.claims or gate not in verdicts:
        others = ", ".join(f"{k}: {v}" for k, v in sorted(verdicts.items())) or "none applies"
        why = "makes no claim on" if gate_exp is not None else "has no expectation for"
        return Judgement(
            verdicts,
            None,
            "ungated",
            f"observed {observed}; gate oracle {gate!r} {why} this cell (other oracles: {others})",
        )
    if verdicts[gate] == AGREE:
        return Judgement(verdicts, gate, "pass", "")
    seen = observed + (f", received by {receiver or 'none'}" if gate_exp.receiver else "")
    if gate_exp.spread:
        seen += f", {spread_text(delivery)}"
    return Judgement(
        verdicts,
        gate,
        "fail",
        f"observed {seen}, gate oracle {gate!r} expects {gate_exp.token} "
        f"({oracles[gate].provenance})",
    )
