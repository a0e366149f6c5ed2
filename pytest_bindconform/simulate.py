"""--bindconform-simulate OS: run the whole pipeline as Windows, macOS or FreeBSD here.

No such machine is available to the project's own tests, yet their code paths
(plan and skip reasons, probe, verdicts, reports, merge) must not first run in
CI. A simulated run therefore:

- builds the Host fingerprint with that OS's platform module from outputs
  recorded on real systems (tests/fixtures/recorded/<os>/, each citing where it
  was recorded), so its parsers and branches run;
- replaces the socket layer (probe.Executor, probe.Child) with a stand-in that
  keeps per-port model state (simlayer.py) and answers each call from
  that OS's executable model (pytest_bindconform/models/<os>.py), in the step
  record format of ops.py, with that OS's error names and codes;
- answers `unknown` wherever the model makes no claim, and such a cell becomes
  a skip ("simulated: the <os> model makes no claim ..."), never an outcome.

Nothing it reports is a conformance result: the host, the terminal header and
summary, and every report say SIMULATED, and `merge` refuses such reports
unless told --simulated. Only the model is exercised, against the documents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import delivery, owner, platforms, probe, simlayer
from .host import IPV4_SPECIFIC, IPV6_SPECIFIC, OPTION_NAMES, Host, from_facts
from .models.base import OS_OPTIONS, V6ONLY_DEFAULT
from .simlayer import NO_CLAIM, SimChild, SimExecutor, World

OSES = ("windows", "darwin", "freebsd")
OPTION_ORDER = OPTION_NAMES  # the names host.available_options() looks up, in its order
RECORDED = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "recorded"


class SimulationUnavailable(Exception):
    pass


def label(os_name: str) -> str:
    """What every output of a simulated run says answered instead of the OS."""
    return f"{os_name}: socket layer from pytest_bindconform/models/{os_name}.py"


# -- the host, from recorded outputs ------------------------------------------
class RecordedSystem:
    """A platforms System answering from outputs recorded on a real machine."""

    def __init__(self, os_name: str, root: Path = RECORDED):
        self.dir = root / os_name
        try:
            self.sources: dict[str, Any] = json.loads((self.dir / "sources.json").read_text())
        except (OSError, ValueError) as exc:
            raise SimulationUnavailable(
                f"--bindconform-simulate {os_name} needs the recorded outputs in {self.dir} "
                f"(a source checkout of pytest-bindconform): {exc}"
            ) from None

    def run(self, argv: Any) -> str:
        command = " ".join(argv)
        for name, entry in self.sources["files"].items():
            if entry.get("simulate") and entry["command"] == command:
                return (self.dir / str(name)).read_text(encoding="utf-8")
        return ""  # not recorded: as if the command were missing on that machine

    def read(self, path: str) -> str | None:
        return None

    def uname(self) -> tuple[str, str, str, str]:
        system, release, version, machine = self.sources["uname"]
        return str(system), str(release), str(version), str(machine)


def simulated_host(os_name: str, root: Path = RECORDED) -> Host:
    if os_name not in OSES:
        raise SimulationUnavailable(
            f"--bindconform-simulate: {os_name!r} is not one of {', '.join(OSES)}"
        )
    facts = platforms.for_os(os_name).facts(RecordedSystem(os_name, root))
    found = facts.addresses or {}
    return from_facts(
        facts,
        admin=False,
        ipv6=True,
        v6only_default=V6ONLY_DEFAULT[os_name],
        options=tuple(o for o in OPTION_ORDER if o in OS_OPTIONS[os_name]),
        addresses={
            "inet": tuple(a for a in IPV4_SPECIFIC if a in found.get("inet", ())),
            "inet6": tuple(a for a in IPV6_SPECIFIC if a in found.get("inet6", ())),
        },
        isolation="simulated",
        simulated=label(os_name),
    )


WORLD: World | None = None


def install(os_name: str) -> None:
    """Swap this process's socket layer for the model of `os_name` (controller and workers)."""
    global WORLD
    WORLD = World(os_name)
    world = WORLD

    def executor() -> SimExecutor:
        return SimExecutor(world)

    def child(owner_name: str) -> SimChild:
        return SimChild(world, owner_name)

    # the two names probe.py creates its socket holders with (tests/test_simulated.py fails
    # loudly, with real Linux outcomes, if probe.py stops using them)
    setattr(probe, "Executor", executor)  # noqa: B010
    setattr(probe, "Child", child)  # noqa: B010
    # the delivery probe's clients are plain sockets: the model answers who receives instead
    simlayer.WORLD_OF_PROBES = world
    setattr(delivery, "Probe", simlayer.SimProbe)  # noqa: B010
    owner.use_platform(platforms.for_os(os_name))


def honest(result: dict[str, Any], os_name: str) -> dict[str, Any]:
    """A cell in which any call (a step, or a delivery probe's connect or send) got no claim
    from the model is a skip, never a verdict."""
    silent = WORLD.silent[:] if WORLD is not None else []
    if WORLD is not None:
        WORLD.silent.clear()
    if not silent or result.get("status") == "skip":
        return result
    return {
        **result,
        "status": "skip",
        "gate": None,
        "verdicts": dict.fromkeys(result.get("verdicts", {}), "not-run"),
        "reason": f"{NO_CLAIM.format(os=os_name)} on '{silent[0]}' "
        f"(pytest_bindconform/models/{os_name}.py answers unknown there)",
    }


__all__ = [
    "NO_CLAIM",
    "OSES",
    "SimExecutor",
    "World",
    "honest",
    "install",
    "label",
    "simulated_host",
]
