"""The individual cases of a suite ('cases:'): sockets, steps, the step under test,
expectations per oracle and profile, deliveries and spreads, into Cells, with every
error the builder (cases.Builder) collects."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .caseparts import SOCKET_DEFAULTS, expectation, profiles_hint, socket_spec, suggest
from .model import FAIRNESS_MIN, SPREADS, Cell, Expectation, SocketSpec, Step, Suite
from .yamlsrc import Path, excerpt

if TYPE_CHECKING:
    from .cases import Builder

JOIN = ("join",)  # ordinary cases may join the loopback group (goal suites: GOAL_CALLS)


def case_cells(b: Builder, case: dict[str, Any], path: Path, suite: Suite) -> list[Cell]:
    """One case's cells, per profile and variant, with its expectations for each."""
    profiles: list[str | None] = list(suite.profiles) or [None]
    variants = b.variants(case.get("variants"))
    if not b.room_for(len(profiles) * max(1, len(variants)), path):
        return []
    names = set(case["sockets"])
    steps = [
        b.parse_step(s, names, (*path, "steps", i), extra=JOIN) for i, s in enumerate(case["steps"])
    ]
    if any(s is None for s in steps):
        return []
    real_steps = [s for s in steps if s is not None]
    under_test = len(real_steps) - 1
    if "test" in case:
        wanted = b.parse_step(case["test"], names, (*path, "test"), extra=JOIN)
        if wanted is None:
            return []
        if wanted not in real_steps:
            b.error(
                (*path, "test"),
                f"step under test {excerpt(case['test'])} is not among the steps: "
                f"{', '.join(map(str, real_steps))}",
            )
            return []
        under_test = real_steps.index(wanted)
    for sname, fields in case["sockets"].items():
        if "option" in fields:
            b.error(
                (*path, "sockets", sname, "option"),
                "individual cases list socket options under 'options'",
            )
        b.check_options(fields.get("options", []), (*path, "sockets", sname, "options"), suite)
    b.check_ports(case["sockets"], real_steps, path)
    exp_by_profile: dict[str | None, list[Expectation]] = {}
    known = set(profiles)  # thousands of profiles: a list would make this quadratic
    for oid, value in case["expect"].items():
        epath: Path = (*path, "expect", oid)
        if not _known_oracle(b, suite, oid, epath):
            continue
        oracle = suite.oracles[oid]
        for p, token in _by_profile(b, suite, value, epath, profiles, known):
            if b.expectation_matches(oracle, p):
                exp_by_profile.setdefault(p, []).append(
                    expectation(
                        oid,
                        token,
                        b.line((*epath, str(p)) if isinstance(value, dict) else epath),
                    )
                )
    for oid, receiver in case.get("deliver", {}).items():
        dpath: Path = (*path, "deliver", oid)
        valid = sorted(names) + ["both", "shared", "none"]
        if not _known_oracle(b, suite, oid, dpath):
            continue
        for p, who in _by_profile(b, suite, receiver, dpath, profiles, known):
            if who not in valid:
                b.error(
                    dpath,
                    f"receiver {excerpt(who)} is not a socket of this case; " + suggest(who, valid),
                )
                continue
            exps = exp_by_profile.get(p, [])
            exps[:] = [replace(e, receiver=who) if e.oracle == oid else e for e in exps]
    _spreads(b, case, path, suite, real_steps, exp_by_profile)
    line = b.line(path)
    cells = []
    for profile, variant in itertools.product(profiles, variants or [{}]):
        specs = []
        for sname, fields in case["sockets"].items():
            merged = {
                **SOCKET_DEFAULTS,
                **{k: v for k, v in variant.items() if k != "state"},
                **fields,
            }
            b.check_socket(merged, (*path, "sockets", sname))
            specs.append(socket_spec(sname, merged))
        _check_joins(b, real_steps, specs, path)
        vkey = b.variant_key(profile, variant)
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


def _known_oracle(b: Builder, suite: Suite, oid: str, at: Path) -> bool:
    """An oracle a case names must be one its suite defines; if not, an error at the key."""
    if oid in suite.oracles:
        return True
    b.error(at, f"unknown oracle {excerpt(oid)}; " + suggest(oid, list(suite.oracles)), key=True)
    return False


def _by_profile(
    b: Builder,
    suite: Suite,
    value: Any,
    at: Path,
    profiles: list[str | None],
    known: set[str | None],
) -> Iterator[tuple[str | None, Any]]:
    """'expect', 'deliver' and 'spread' give an oracle's value once for every profile, or
    per profile: each known profile's value; an unknown profile is an error at its key."""
    per_profile = value if isinstance(value, dict) else dict.fromkeys(profiles, value)
    for p, each in per_profile.items():
        if p not in known:
            b.error(
                (*at, str(p)),
                f"unknown profile {excerpt(p)}; " + profiles_hint(suite.profiles, str(p)),
                key=True,
            )
            continue
        yield p, each


def _spreads(
    b: Builder,
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
        if not _known_oracle(b, suite, oid, spath):
            continue
        if oid in case.get("deliver", {}):
            b.error(spath, f"oracle {excerpt(oid)} says 'deliver' and 'spread': one")
            continue
        for p, shape in _by_profile(b, suite, value, spath, profiles, set(profiles)):
            where = (*spath, str(p)) if isinstance(value, dict) else spath
            if shape not in SPREADS:
                b.error(
                    where,
                    f"spread {excerpt(shape)} is unknown; " + suggest(shape, list(SPREADS)),
                )
                continue
            if shape == "last-binder" and not bound:
                b.error(where, "spread last-binder needs a 'bind' step")
                continue
            who = bound[-1] if shape == "last-binder" else ""
            exps = exp_by_profile.get(p, [])
            exps[:] = [
                replace(e, spread=shape, fairness_min=fairness_min, receiver=who)
                if e.oracle == oid
                else e
                for e in exps
            ]


def _check_joins(b: Builder, steps: list[Step], specs: list[SocketSpec], path: Path) -> None:
    """A 'join' step joins the loopback multicast group: only a UDP socket can."""
    types = {spec.name: spec.type for spec in specs}
    for i, step in enumerate(steps):
        if step.call == "join" and types.get(step.socket) != "dgram":
            b.error((*path, "steps", i), f"step {excerpt(str(step))}: join needs a UDP socket")
