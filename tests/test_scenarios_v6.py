"""Issue 14 item 9: hosts with net.ipv6.bindv6only=1. The IPv6 cells of the existing grids,
the lifecycle and dual-stack suites run green there, in a private namespace with the
sysctl flipped, with and without xdist; where an oracle assumes the setting, its twin
measured with the other value gates; the dual-stack recommendation follows the host."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_bindconform.host import fingerprint
from pytest_bindconform.model import Oracle
from pytest_bindconform.oracles import for_settings

ROOT = Path(__file__).resolve().parent.parent
SUITES = (
    "v6only",
    "posix-pairwise-tcp-bound",
    "posix-pairwise-tcp-listening",
    "posix-pairwise-udp",
    "lifecycle-restart",
    "lifecycle-sharing",
    "cross-family-other-user",
    "ms-dual-stack",
    "goal-dual-stack-tcp",
    "goal-dual-stack-udp",
)
ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
NO_NAMESPACE = 77
# a private network namespace (lo up, 127.0.0.2 and 2001:db8::1/::2 added, as
# --bindconform-isolate=netns makes) with net.ipv6.bindv6only set, then pytest in it
FLIPPED = f"""\
import sys
import pytest
from pytest_bindconform.isolate import IsolationUnavailable, enter_netns
try:
    enter_netns()
    with open("/proc/sys/net/ipv6/bindv6only", "w") as fh:
        fh.write(sys.argv.pop(1))
except (IsolationUnavailable, OSError) as exc:
    print("no namespace:", exc)
    sys.exit({NO_NAMESPACE})
sys.exit(pytest.main(sys.argv[1:]))
"""
linux_only = pytest.mark.skipif(
    fingerprint(probe=False).os != "linux", reason="net.ipv6.bindv6only is a Linux setting"
)


def run_flipped(pytester: pytest.Pytester, value: str, suites: tuple[str, ...], *args: str) -> Any:
    for name in suites:
        shutil.copy(ROOT / "cases" / f"{name}.bind.yaml", pytester.path)
    report = pytester.path / "report.json"
    result = pytester.run(
        sys.executable, "-c", FLIPPED, value, *ARGS, f"--bindconform-json={report}", *args
    )
    if result.ret == NO_NAMESPACE:
        pytest.skip(f"network namespaces are not permitted here: {result.stdout.str()}")
    assert result.ret == 0, result.stdout.str()[-3000:]
    return json.loads(report.read_text())


def by_name(doc: dict[str, Any], suite: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in doc["results"] if r["suite"] == suite}


TCP_GRIDS = ("posix-pairwise-tcp-bound", "posix-pairwise-tcp-listening")


@linux_only
@pytest.mark.parametrize(
    "workers, suites",
    [
        (["-n", "2"], SUITES),
        # without xdist, the TCP grids (2048 cells, none changes either) are left to the above
        (["-p", "no:xdist"], tuple(s for s in SUITES if s not in TCP_GRIDS)),
    ],
)
def test_the_ipv6_suites_pass_on_a_bindv6only_1_host_with_its_own_expectations(
    pytester: pytest.Pytester, workers: list[str], suites: tuple[str, ...]
) -> None:
    doc = run_flipped(pytester, "1", suites, *workers)
    assert doc["run_info"]["host"]["sysctl"]["net.ipv6.bindv6only"] == "1"
    assert doc["run_info"]["host"]["v6only_default"] is True
    statuses = {r["status"] for r in doc["results"]}
    assert statuses <= {"pass", "skip", "ungated"}, statuses
    # no cell left out for the setting: every oracle that assumed it has a measured twin
    settings = [r["id"] for r in doc["results"] if "assumes other host settings" in r["reason"]]
    assert not settings, settings
    # the v6only suite was judged by what Linux does with bindv6only=1
    v6 = by_name(doc, "v6only")
    assert {r["gate"] for r in v6.values()} == {"linux-bindv6only"}
    assert {r["status"] for r in v6.values()} == {"pass"}
    assert v6["ipv4-client-to-default-wildcard"]["observed"]["outcome"] == "REFUSED"
    assert v6["ipv4-client-to-dual-stack-wildcard"]["observed"]["outcome"] == "ok"
    assert v6["ipv4-wildcard-after-default-wildcard[tcp]"]["observed"]["outcome"] == "ok"
    # the grids' own linux oracle holds under both settings and gates every cell it claims
    for suite in (s for s in suites if s != "v6only" and not s.startswith("goal-")):
        cells = by_name(doc, suite)
        passed = [r for r in cells.values() if r["status"] == "pass"]
        assert passed and {r["gate"] for r in passed} == {"linux"}, suite
        assert len(passed) + sum(r["status"] == "skip" for r in cells.values()) == len(cells)
    grid = by_name(doc, "posix-pairwise-udp")
    assert len(grid) == 1024 and {r["status"] for r in grid.values()} == {"pass"}


def dual_stack_designs(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (g["transport"], g["candidate_id"]): g
        for g in doc["recommendations"]["goals"]
        if g["goal"] == "dual-stack"
    }


@linux_only
def test_the_dual_stack_goal_follows_the_hosts_v6only_default(pytester: pytest.Pytester) -> None:
    """A library that leaves IPV6_V6ONLY at the default serves IPv4 on [::] only where the
    default is off: with bindv6only=1 it meets the goal by the two-socket design instead.
    Candidates that set it themselves keep their design, and so does the recommendation."""
    goals = ("goal-dual-stack-tcp", "goal-dual-stack-udp")
    designs = {}
    recommended = {}
    for value in ("0", "1"):
        doc = run_flipped(pytester, value, goals, "-n", "0")
        designs[value] = dual_stack_designs(doc)
        recommended[value] = {r["transport"]: r for r in doc["recommendations"]["recommended"]}
    one, two = "one [::] socket with V6ONLY off", "0.0.0.0 plus [::] with V6ONLY on"
    flipped = [
        k
        for k, g in designs["0"].items()
        if g["kind"] == "library" and g["v6only"] is None and g.get("design") == one
    ]
    assert flipped, designs["0"]
    for key in flipped:
        assert designs["1"][key]["meets"] is True and designs["1"][key]["design"] == two, key
    explicit = [k for k, g in designs["0"].items() if g["v6only"] is not None and g["meets"]]
    assert explicit
    for key in explicit:  # a candidate that sets V6ONLY is not moved by the host's default
        assert designs["1"][key]["design"] == designs["0"][key]["design"], key
        assert designs["1"][key]["meets"] is True, key
    for transport in ("tcp", "udp"):
        assert recommended["0"][transport]["design"] == recommended["1"][transport]["design"]


def oracle(oid: str, sysctl: dict[str, str] | None = None) -> Oracle:
    settings = tuple(sorted((sysctl or {}).items()))
    return Oracle(id=oid, kind="measured", source="test", os="linux", sysctl=settings)


def test_a_twin_measured_under_the_hosts_settings_stands_in_for_the_gate() -> None:
    key = "net.ipv6.bindv6only"
    suite = {"linux": oracle("linux", {key: "0"})}
    suite["linux-bindv6only"] = oracle("linux-bindv6only", {key: "1"})
    assert for_settings("linux", suite, "linux", "6.1", {key: "1"}) == "linux-bindv6only"
    assert for_settings("linux", suite, "linux", "6.1", {key: "0"}) == "linux"
    # named the other way round, the twin gives way to the oracle for this host
    assert for_settings("linux-bindv6only", suite, "linux", "6.1", {key: "0"}) == "linux"
    # an oracle assuming nothing is the gate whatever the host
    assert for_settings("x", {"x": oracle("x")}, "linux", "6.1", {key: "1"}) == "x"
    # two candidate twins, or one for other settings: the gate stays (and skips)
    both = {**suite, "again": oracle("again", {key: "1"})}
    assert for_settings("linux", both, "linux", "6.1", {key: "1"}) == "linux"
    other = {"linux": suite["linux"], "ts": oracle("ts", {"net.ipv4.tcp_timestamps": "0"})}
    assert for_settings("linux", other, "linux", "6.1", {key: "1"}) == "linux"
