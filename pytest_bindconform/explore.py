"""Hypothesis hunts for socket sequences where this host and its OS's model differ.

Tables cover pairs; programs open sockets in every order. A state machine draws
short sequences (bind a new socket, bind one again, listen, close) from what
this host offers; each sequence runs once with real sockets through the probe,
on a port proven free before and after, and every step's real outcome is
compared with the model's prediction given the real outcomes before it. A
divergence is shrunk by Hypothesis and written as a ready-to-commit case file:
its measured expectation is what this host did, its model expectation what the
model said. One of the two is wrong, and the file is the evidence.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from . import cases, models, probe
from .host import Host
from .model import Cell, SocketSpec, Step
from .models import Model
from .models.base import UNKNOWN
from .models.cells import Port, model_socket
from .ports import Interference, PortAllocator, default_range, worker_slice
from .runner import Context, execute

Signature = tuple[str, str, str, str]
STEPS_PER_SEQUENCE = 6
NAMES = string.ascii_lowercase


@dataclass
class ExploreResult:
    """What a run did; `divergences` are the case files written (reproduced)."""

    examples: int  # examples Hypothesis ran (shrinking included)
    seconds: float
    seed: int | None  # None in derandomized mode
    sequences: int = 0  # socket sequences run on this host (examples with at least one step)
    deliveries: int = 0  # sequences whose delivery was compared
    divergences: list[Path] = field(default_factory=list)  # case files written
    found: list[str] = field(default_factory=list)  # one line per divergence
    interference: int = 0  # sequences discarded because the port was touched
    unreproduced: list[str] = field(default_factory=list)  # shrunk, but a rerun disagreed
    steps: int = 0  # bind/listen/close... steps compared with the model
    unclaimed: int = 0  # of those, steps the model answered 'unknown' (no source decides)

    @property
    def rate(self) -> float:
        """Examples per second."""
        return self.examples / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        how = "derandomized" if self.seed is None else f"seed {self.seed}"
        return (
            f"bindconform explore: {self.sequences} socket sequences in {self.seconds:.1f} s "
            f"({self.rate:.0f} examples/s, {how}): {len(self.divergences)} divergence(s)"
            + f"; {self.unclaimed} of {self.steps} steps unclaimed by the model"
            + (f", {len(self.unreproduced)} not reproduced" if self.unreproduced else "")
            + (f", {self.interference} discarded for interference" if self.interference else "")
        )


def new_seed() -> int:
    """A seed to show in the header before the run, and to pass to run()."""
    return random.SystemRandom().getrandbits(32)


@dataclass(frozen=True)
class Divergence:
    steps: tuple[Step, ...]  # up to and including the step under test
    specs: tuple[SocketSpec, ...]
    observed: str  # outcome of the last step
    predicted: str
    receivers: tuple[str, str] | None = None  # (observed, predicted) when delivery diverged

    @property
    def signature(self) -> Signature:
        """What makes two divergences one finding, across rounds of a run."""
        step = self.steps[-1]
        kind = next(s.type for s in self.specs if s.name == step.socket)
        if self.receivers:
            seen, said = (
                r if r in ("both", "shared", "none", UNKNOWN) else "one" for r in self.receivers
            )
            return "deliver", kind, seen, said
        return step.call, kind, self.observed, self.predicted

    def __str__(self) -> str:
        before = ", ".join(map(str, self.steps[:-1]))
        if self.receivers:
            return (
                f"after [{', '.join(map(str, self.steps))}]: received by {self.receivers[0]}, "
                f"the model says {self.receivers[1]}"
            )
        return (
            f"{self.steps[-1]} after [{before}]: observed {self.observed}, "
            f"the model predicts {self.predicted}"
        )


class Found(AssertionError):
    """Raised at the end of a sequence that diverged, so Hypothesis shrinks it."""


Place = tuple[str, str, "bool | None"]  # family, address role, v6only


def socket_choices(host: Host) -> tuple[list[Place], list[tuple[str, ...]]]:
    """Where a socket can bind on this host (family, address role, v6only) and
    which option sets it can carry, simplest first: Hypothesis shrinks each
    choice towards the start, and equal choices of several sockets together."""
    options = sorted(set(host.options) & models.OS_OPTIONS[host.os])
    subsets = [c for n in range(len(options) + 1) for c in itertools.combinations(options, n)]
    has_v4 = bool(host.addresses.get("inet"))
    places: list[Place] = []
    for family in ["inet", "inet6"] if host.ipv6 else ["inet"]:
        specific = min(len(host.addresses.get(family, ())), 2)
        roles = ["wildcard", "specific", "specific2"][: 1 + specific]
        roles += ["v4mapped-specific", "v4mapped-wildcard"] if family == "inet6" and has_v4 else []
        v6only = [None, False, True] if family == "inet6" else [None]
        places += [(family, role, v6) for role in roles for v6 in v6only]
    return places, subsets


def socket_specs(host: Host) -> st.SearchStrategy[SocketSpec]:
    """Sockets this host can really create: three choices each (type, place, options)."""
    places, subsets = socket_choices(host)
    return st.builds(
        lambda kind, place, options: SocketSpec("-", place[0], kind, place[2], options, place[1]),
        st.sampled_from(("stream", "dgram")),
        st.sampled_from(places),
        st.sampled_from(subsets),
    )


def compare(
    host: Host,
    specs: Sequence[SocketSpec],
    steps: Sequence[Step],
    seen: probe.Observation,
    model: Model,
    known: set[Signature],
    deliveries: bool,
    tally: dict[str, Any] | None = None,
) -> Divergence | None:
    """The first step whose real outcome the model does not predict (known
    findings are stepped over), then the delivery; the model follows reality.
    Only claims are compared: a step the model answers 'unknown' (no source
    decides it) is no divergence, and is counted in tally['unclaimed']."""
    tally = {} if tally is None else tally
    port = Port({s.name: model_socket(s, None, host) for s in specs}, host)
    calls = [r for r in seen.steps if r["call"].split()[0] not in ("socket", "setsockopt")]
    said = seen.outcome  # a step on an unusable socket: the failure both agreed on
    for index, step in enumerate(steps):
        observed = calls[index]["outcome"]
        if observed == probe.NOT_RUN:
            continue
        said = port.expect(model, step)
        tally["steps"] = tally.get("steps", 0) + 1
        tally["unclaimed"] = tally.get("unclaimed", 0) + (said == UNKNOWN)
        found = _new(Divergence(tuple(steps[: index + 1]), tuple(specs), observed, said), known)
        if found:
            return found
        port.apply(step, observed)
    if not deliveries or seen.delivery is None:
        return None
    receiver = seen.delivery["receiver"]
    predicted = models.predict_delivery(host.os, port.sharing(), seen.delivery["target"])
    found = Divergence(tuple(steps), tuple(specs), seen.outcome, said, (receiver, predicted))
    return _new(found, known)


def _new(found: Divergence, known: set[Signature]) -> Divergence | None:
    seen, said = found.receivers or (found.observed, found.predicted)
    # Traffic balanced over three or more sockets may, by chance, reach only two
    # of them with the probe's few datagrams: 'both' does not contradict 'shared'.
    balanced = found.receivers is not None and (seen, said) == ("both", "shared")
    if said in (UNKNOWN, seen) or balanced or found.signature in known:
        return None
    return found


def _cell(specs: Sequence[SocketSpec], steps: Sequence[Step]) -> Cell:
    return Cell(
        suite="explore",
        name="explore",
        key="explore",
        variant="",
        profile=None,
        sockets=tuple(specs),
        steps=tuple(steps),
        under_test=len(steps) - 1,
        expectations=(),
        line=0,
    )


def _machine(
    host: Host,
    model: Model,
    ports: PortAllocator,
    known: set[Signature],
    deliveries: bool,
    log: dict[str, Any],
) -> type[RuleBasedStateMachine]:
    spec_strategy = socket_specs(host)
    later_steps = st.sampled_from([(c, i) for i in range(4) for c in ("listen", "close", "bind")])

    class BindSequences(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.specs: list[SocketSpec] = []
            self.steps: list[Step] = []
            self.open: list[str] = []  # a step on a closed socket would make a new one
            log["examples"] += 1

        @initialize(spec=spec_strategy)
        def bind_first(self, spec: SocketSpec) -> None:
            self.bind_new(spec)  # every example runs at least one socket

        @rule(spec=spec_strategy)
        def bind_new(self, spec: SocketSpec) -> None:
            name = NAMES[len(self.specs)]
            self.specs.append(
                SocketSpec(name, spec.family, spec.type, spec.v6only, spec.options, spec.address)
            )
            self.steps.append(Step("bind", name))
            self.open.append(name)

        @precondition(lambda self: bool(self.open))
        @rule(what=later_steps)
        def again(self, what: tuple[str, int]) -> None:
            call, which = what
            name = self.open[which % len(self.open)]
            self.steps.append(Step(call, name))
            if call == "close":
                self.open.remove(name)

        def teardown(self) -> None:
            if not self.steps:
                return
            # Without deliveries, close everything at the end so the probe sends no
            # traffic (its delivery check waits for datagrams that never come).
            tail = [] if deliveries else [Step("close", name) for name in self.open]
            cell = _cell(self.specs, self.steps + tail)
            port = ports.acquire()
            seen = probe.run(cell, probe.plan(cell, None, host), port, host)
            log["sequences"] += 1
            log["deliveries"] += deliveries and seen.delivery is not None
            try:
                ports.release(port, strict=not seen.connections)
            except Interference:
                log["interference"] += 1
                return
            found = compare(host, self.specs, self.steps, seen, model, known, deliveries, log)
            if found is not None:
                log["last"] = found
                raise Found(str(found))

    return BindSequences


def case_text(found: Divergence, host: Host, how: str) -> str:
    """The divergence as a case file: format 1, raw option names, address roles."""
    os_ = host.os
    used = {s.socket for s in found.steps}
    kind = "TCP" if found.signature[1] == "stream" else "UDP"
    if found.receivers:
        seen, said = found.receivers
        what = f"{kind} delivery: received by {seen}, the model says {said}"
    else:
        seen, said = found.observed, found.predicted
        what = f"{found.steps[-1]} ({kind}) observed {seen}, the model predicted {said}"
    lines = [
        "# Found by pytest-bindconform exploration (Hypothesis, shrunk); review before committing.",
        "format: 1",
        "id: {id}",
        f'title: "Exploration: {what}"',
        "description: >",
        f"  A minimal socket sequence on which {host.os} {host.os_version} and the {os_} model",
        "  (pytest_bindconform/models) disagree. One of them is wrong: fix the model, or show",
        "  by measurement that the host misbehaved, and keep this file as the regression case.",
        f"  {how}.",
        "references: []",
        "oracles:",
        f"  {os_}-measured:",
        "    kind: measured",
        f'    source: "measured on {host.os} {host.os_release} ({host.kernel}, {host.machine}), '
        f'isolation {host.isolation}, by exploration"',
        f'    applies: {{os: {os_}, min_version: "{host.os_version}", '
        f'max_version: "{host.os_version}"}}',
        f"  {os_}-model:",
        "    kind: model",
        f'    source: "predicted by pytest_bindconform/models/{os_}.py"',
        f"    applies: {{os: {os_}}}",
        "cases:",
        "  - id: {id}",
        "    sockets:",
    ]
    for spec in found.specs:
        if spec.name in used:
            fields = [f"family: {spec.family}", f"type: {spec.type}"]
            if spec.v6only is not None:
                fields.append(f"v6only: {str(spec.v6only).lower()}")
            fields += [f"options: [{', '.join(spec.options)}]", f"address: {spec.address}"]
            lines.append(f"      {spec.name}: {{{', '.join(fields)}}}")
    lines += [
        f"    steps: [{', '.join(str(s) for s in found.steps)}]",
        "    expect:",
        f"      {os_}-measured: {found.observed}",
        f"      {os_}-model: {found.predicted}",
    ]
    if found.receivers:
        lines += [
            "    deliver:",
            f"      {os_}-measured: {found.receivers[0]}",
            f"      {os_}-model: {found.receivers[1]}",
        ]
    text = "\n".join(lines) + "\n"
    return text.replace("{id}", f"explore-{os_}-{hashlib.sha256(text.encode()).hexdigest()[:10]}")


def write_case(found: Divergence, host: Host, how: str, out_dir: Path) -> Path:
    """Write the case file and load it back; a file the loader rejects is a bug here."""
    text = case_text(found, host, how)
    suite_id = text.split("\nid: ", 1)[1].split("\n", 1)[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{suite_id}{cases.SUFFIX}"
    path.write_text(text, encoding="utf-8", newline="\n")  # LF on every OS: a diffable file
    cases.load_suite(path)  # raises CaseFileError naming line and column
    return path


def reproduces(path: Path, host: Host, ports: PortAllocator) -> bool:
    """Run the written case with the plugin's own runner: the measured
    expectation must hold again, or the divergence was not stable."""
    suite = cases.load_suite(path)
    ctx = Context(host, {host.os: f"{host.os}-measured"}, ports)
    return all(execute(cell, suite, ctx)["status"] == "pass" for cell in suite.cells)


def run(
    host: Host,
    examples: int,
    seed: int | None = None,
    derandomize: bool = False,
    out_dir: Path = Path("reports/counterexamples"),
    *,
    ports: range | None = None,
    model: Model | None = None,
    deliveries: bool = False,
    say: Callable[[str], None] | None = print,
    max_findings: int = 10,
) -> ExploreResult:
    """Explore about `examples` socket sequences on this host against its OS's model.

    seed: Hypothesis seed (None: a fresh one, returned in the result; ignored
    when derandomize). ports: a slice no concurrent cell uses (default: this
    host's default range). model: what to compare with (default: the host OS's
    model; tests inject a wrong one). deliveries: also compare who receives
    traffic at the end of each sequence (slower: the probe waits for it). Each
    finding is shrunk, written under out_dir, loaded back, re-run, and announced
    through `say`; after one, exploration goes on with the rest of the budget,
    stepping over findings of the same kind.
    """
    if seed is None and not derandomize:
        seed = new_seed()
    allocator = PortAllocator(host, ports or worker_slice(*default_range(host), 0, 1))
    compare_with = model or models.for_os(host.os)
    known: set[Signature] = set()
    log: dict[str, Any] = {
        "examples": 0,
        "sequences": 0,
        "deliveries": 0,
        "interference": 0,
        "steps": 0,
        "unclaimed": 0,
    }
    result = ExploreResult(0, 0.0, None if derandomize else seed)
    start = time.perf_counter()
    for round_ in itertools.count():
        if (
            log["examples"] >= examples
            or len(result.found) + len(result.unreproduced) >= max_findings
        ):
            break
        machine: Any = _machine(host, compare_with, allocator, known, deliveries, log)
        if not derandomize:
            machine = hypothesis.seed((seed or 0) + round_)(machine)
        config = settings(
            max_examples=max(1, examples - log["examples"]),
            stateful_step_count=STEPS_PER_SEQUENCE,
            derandomize=derandomize,
            database=None,
            deadline=None,
            verbosity=Verbosity.quiet,
            suppress_health_check=list(HealthCheck),
            phases=(Phase.explicit, Phase.generate, Phase.shrink),
        )
        log.pop("last", None)
        try:
            run_state_machine_as_test(machine, settings=config)  # type: ignore[no-untyped-call,unused-ignore]
            break
        except (Found, Flaky):
            if "last" not in log:
                raise
            found: Divergence = log["last"]
        known.add(found.signature)
        how = (
            "Found in derandomized mode"
            if derandomize
            else f"Found with seed {seed} (round {round_ + 1})"
        )
        path = write_case(found, host, how, out_dir)
        if reproduces(path, host, allocator):
            result.divergences.append(path)
            result.found.append(f"{found} -> {path}")
            if say:
                say(f"bindconform explore: divergence, minimal case written to {path}")
        else:
            result.unreproduced.append(f"{found} -> {path}")
            if say:
                say(f"bindconform explore: divergence did not reproduce on a rerun: {path}")
    result.seconds = time.perf_counter() - start
    result.examples, result.sequences = log["examples"], log["sequences"]
    result.deliveries, result.interference = log["deliveries"], log["interference"]
    result.steps, result.unclaimed = log["steps"], log["unclaimed"]
    return result
