"""Goal suites as written: the suite-level `goal:` block and its situations, checked
with file:line:column errors through the case loader's builder (cases.Builder)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .candidates import standard
from .caseparts import SOCKET_DEFAULTS, socket_spec, suggest
from .goals import GOAL_ONLY, SOCKET_GOAL_ONLY, TRANSPORT_TYPE, Goal, Need, Situation, expand
from .model import Cell, Suite

if TYPE_CHECKING:
    from .cases import Builder


def reject_goal_keys(builder: Builder, case: dict[str, Any], path: tuple[Any, ...]) -> None:
    """In an ordinary suite, goal-only keys are mistakes, and 'expect' is required."""
    for key in GOAL_ONLY:
        if key in case:
            builder.error(
                (*path, key), f"{key!r} belongs to goal suites: add a suite-level 'goal:' block"
            )
    for sname, fields in case["sockets"].items():
        for key in SOCKET_GOAL_ONLY:
            if key in fields:
                builder.error(
                    (*path, "sockets", sname, key),
                    f"{key!r} belongs to goal suites: add a suite-level 'goal:' block",
                    key=True,
                )
    if "expect" not in case:
        builder.error(
            path,
            "required key 'expect' is missing (required here: id, sockets, steps, "
            "expect; a goal suite's cases give 'need' instead)",
        )


def build(builder: Builder, data: dict[str, Any], suite: Suite) -> list[Cell]:
    block = data["goal"]
    wanted = block.get("candidates", {})
    goal = Goal(
        id=block["id"],
        transport=block["transport"],
        title=block["title"],
        probes=int(block.get("probes", 16)),
        candidates=standard(wanted.get("options"), wanted.get("v6only")),
        rivals=list(block.get("rivals", [])),
        situations=[],
    )
    suite.goal = goal
    if "grid" in data:
        builder.error(("grid",), "a goal suite lists situations under 'cases', not a grid")
    for i, case in enumerate(data.get("cases", [])):
        situation = _situation(builder, case, ("cases", i), goal)
        if situation is not None:
            goal.situations.append(situation)
    cells: list[Cell] = []
    for candidate in goal.candidates:
        cells += expand(goal, suite, candidate)
    return cells


def _situation(
    builder: Builder, case: dict[str, Any], path: tuple[Any, ...], goal: Goal
) -> Situation | None:

    ok = True
    if "need" not in case:
        builder.error(
            path,
            f"case {case['id']!r}: a goal suite's case needs 'need:' (what goal "
            f"{goal.id!r} needs of this situation, e.g. need: {{outcome: fail}})",
        )
        ok = False
    if "expect" in case or "deliver" in case or "spread" in case:
        builder.error(
            path,
            "a goal suite's cases say 'need', not 'expect'/'deliver'/'spread' (no oracle "
            "judges a goal: the host's own outcome does)",
        )
        ok = False
    if "variants" in case and "type" in case["variants"]:
        builder.error(
            (*path, "variants", "type"),
            f"the goal's transport ({goal.transport}) decides the socket type; drop variants.type",
        )
        ok = False
    names = set(case["sockets"])
    mine, rivals, specs = [], [], []
    for sname, fields in case["sockets"].items():
        spath = (*path, "sockets", sname)
        if fields.get("candidate") and fields.get("rival"):
            builder.error(spath, f"socket {sname!r} cannot be both candidate and rival")
            ok = False
        if (fields.get("candidate") or fields.get("rival")) and (
            "options" in fields or "option" in fields
        ):
            builder.error(
                spath,
                f"socket {sname!r} takes its options from the "
                f"{'candidate' if fields.get('candidate') else 'rivals'}; drop 'options'",
            )
            ok = False
        if (
            fields.get("candidate")
            and "v6only" in fields
            and len(goal.candidates) != len({c.base for c in goal.candidates})
        ):
            builder.error(
                (*spath, "v6only"),
                "the goal's candidates set v6only on my sockets; drop v6only here",
            )
            ok = False
        if fields.get("candidate"):
            mine.append(sname)
        if fields.get("rival"):
            rivals.append(sname)
        merged = {**SOCKET_DEFAULTS, "type": TRANSPORT_TYPE[goal.transport], **fields}
        specs.append(
            socket_spec(sname, {k: v for k, v in merged.items() if k not in SOCKET_GOAL_ONLY})
        )
    if not mine:
        builder.error(
            (*path, "sockets"), "a situation needs 'my' socket: mark one 'candidate: true'"
        )
        ok = False
    if rivals and not goal.rivals:
        builder.error(
            (*path, "sockets", rivals[0], "rival"),
            "rival sockets need the goal's 'rivals:' list of option sets",
            key=True,
        )
        ok = False
    need_data = case.get("need", {"outcome": "any"})
    for key in ("else_silent", "receive", "receive_all"):
        for j, who in enumerate(need_data.get(key, [])):
            if who not in names:
                builder.error(
                    (*path, "need", key, j),
                    f"need.{key}: {who!r} is not a socket "
                    "of this case; " + suggest(who, sorted(names)),
                )
                ok = False
    if need_data.get("else_silent") and need_data["outcome"] != "fail":
        builder.error((*path, "need", "else_silent"), "else_silent goes with outcome: fail")
        ok = False
    steps = []
    for j, text in enumerate(case["steps"]):
        step = builder.parse_step(text, names, (*path, "steps", j), extra=("join", "kill"))
        if step is None:
            ok = False
            continue
        spec = next((s for s in specs if s.name == step.socket.split(".")[0]), None)
        if step.call == "kill" and spec is not None and spec.owner == "self":
            builder.error(
                (*path, "steps", j),
                f"step {text!r}: kill needs a socket held by "
                "another process (owner: process or other-user)",
            )
            ok = False
        if step.call == "join" and spec is not None and spec.type != "dgram":
            builder.error((*path, "steps", j), f"step {text!r}: join needs a UDP socket")
            ok = False
        steps.append(step)
    if not ok:
        return None
    under_test = len(steps) - 1
    if "test" in case:
        wanted = builder.parse_step(case["test"], names, (*path, "test"), extra=("join", "kill"))
        if wanted is None or wanted not in steps:
            if wanted is not None:
                builder.error(
                    (*path, "test"),
                    f"step under test {case['test']!r} is not among "
                    f"the steps: {', '.join(map(str, steps))}",
                )
            return None
        under_test = steps.index(wanted)
    for spec in specs:
        builder.check_socket(
            {"family": spec.family, "address": spec.address, "v6only": spec.v6only},
            (*path, "sockets", spec.name),
        )
    variants = builder.variants(case.get("variants"))
    for variant in variants:
        goal.variant_keys[tuple(sorted(variant.items()))] = builder.variant_key(
            None, {"type": TRANSPORT_TYPE[goal.transport], **variant}
        )
    return Situation(
        id=case["id"],
        title=case.get("title", ""),
        line=builder.line(path),
        sockets=tuple(specs),
        mine=tuple(mine),
        rivals=tuple(rivals),
        steps=tuple(steps),
        under_test=under_test,
        need=Need(
            need_data["outcome"],
            tuple(need_data.get("else_silent", ())),
            tuple(need_data.get("receive", ())),
            tuple(need_data.get("receive_all", ())),
        ),
        variants=tuple(tuple(sorted(v.items())) for v in variants),
        where_possible=bool(case.get("where_possible", False)),
        design=case.get("for", {}).get("v6only"),
    )
