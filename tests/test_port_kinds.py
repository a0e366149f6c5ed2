"""A socket's own port (issue 14 items 2 and 3): port 0, same-as, privileged; the
compare-ports and rebind steps; the port-zero and privileged-ports suites, run with real
sockets with and without xdist, and under the sysctl settings their other oracles assume
(each in a private network namespace of its own)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_bindconform import cases
from pytest_bindconform.host import fingerprint
from pytest_bindconform.models.cells import predict
from pytest_bindconform.ports import PortAllocator, proof
from pytest_bindconform.yamlsrc import CaseFileError

ROOT = Path(__file__).resolve().parent.parent
SUITES = ("port-zero", "privileged-ports")
ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
HOST = fingerprint()
OUTER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
# below the ephemeral ports and apart from the other tests' ranges
PORTS = f"--bindconform-ports={16000 + 500 * OUTER}-{16499 + 500 * OUTER}"
linux_only = pytest.mark.skipif(
    HOST.os != "linux", reason="the suites' gate here is measured Linux"
)


def run_suites(pytester: pytest.Pytester, *args: str) -> dict[str, dict[str, Any]]:
    for name in SUITES:
        shutil.copy(ROOT / "cases" / f"{name}.bind.yaml", pytester.path)
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(*ARGS, PORTS, f"--bindconform-json={report}", *args)
    assert result.ret == 0, result.stdout.str()[-3000:]
    return {r["id"].split("::", 1)[-1]: r for r in json.loads(report.read_text())["results"]}


def ports_of(record: dict[str, Any]) -> dict[str, int | None]:
    return {s["name"]: s.get("port") for s in record["scenario"]["sockets"]}


@linux_only
@pytest.mark.parametrize("workers", [["-n", "0"], ["-n", "2"], ["-p", "no:xdist"]])
def test_the_suites_observe_what_linux_was_measured_to_do(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    results = run_suites(pytester, *workers)
    assert {r["status"] for r in results.values()} <= {"pass", "skip"}, results
    # IPv4 and IPv6 asking for port 0 get two ports, both recorded
    both = results["ipv4-and-ipv6-both-port-0[tcp]"]
    got = ports_of(both)
    assert both["observed"]["outcome"] == "differ" and None not in got.values()
    assert got["a"] != got["b"]
    compare = both["observed"]["steps"][-1]
    assert compare["call"] == "compare-ports a b" and compare["ports"] == got
    # the fix: the second family on the port the first got, where V6ONLY allows it
    shared = results["ipv6-only-on-the-port-ipv4-got[tcp]"]
    assert shared["observed"]["outcome"] == "ok"
    assert ports_of(shared)["a"] == ports_of(shared)["b"]
    assert results["ipv4-on-the-port-dual-stack-got[tcp]"]["observed"]["outcome"] == "INUSE"
    # the kernel's pick is ephemeral, never the cell's own port
    lo, hi = HOST.ephemeral_ports or (32768, 60999)
    assert all(lo <= p <= hi for p in got.values() if p is not None)
    # the bounded loop: a hundred binds, and how often the port just closed came back
    rebind = results["just-closed-port-comes-back[udp]"]["observed"]["steps"][-1]
    assert rebind["tries"] == 100 and len(rebind["ports"]) == 100
    assert rebind["came_back"] < 100 and rebind["outcome"] == "differ"
    if HOST.admin:  # root: the socket lived in a child that setuid'd to nobody
        low = results["privileged-port-on-the-wildcard[tcp4]"]
        assert low["observed"]["outcome"] == "ACCESS"
        assert low["scenario"]["sockets"][0]["owner"] == "other-user"
        bind = low["observed"]["steps"][-1]
        assert bind["error"] == "EACCES" and 600 <= bind["port"] <= 1023


NSRUN = shutil.which("unshare")
sysctl_ns = pytest.mark.skipif(
    HOST.os != "linux" or not HOST.admin or NSRUN is None or not Path("/proc/sys/net").exists(),
    reason="needs root on Linux and unshare(1) for a private network namespace",
)


def run_in_namespace(tmp_path: Path, suite: str, sysctls: list[str], gate: str) -> dict[str, Any]:
    """The suite in a fresh network namespace with these settings, gated by the oracle
    measured with them: the host keeps its own settings."""
    shutil.copy(ROOT / "cases" / f"{suite}.bind.yaml", tmp_path)
    report = tmp_path / "report.json"
    pytest_cmd = [sys.executable, "-m", "pytest", f"{suite}.bind.yaml", *ARGS, "-p", "no:xdist"]
    pytest_cmd += [f"--bindconform-gate=linux={gate}", f"--bindconform-json={report}"]
    script = "ip link set lo up && sysctl -q -w " + " ".join(sysctls) + ' && exec "$@"'
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, "sh", *pytest_cmd],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    data: dict[str, Any] = json.loads(report.read_text())
    data["stdout"] = done.stdout[-3000:]
    return data


@sysctl_ns
def test_on_a_one_port_ephemeral_range_bind_0_refuses_the_held_port(tmp_path: Path) -> None:
    data = run_in_namespace(
        tmp_path,
        "port-zero",
        ["net.ipv4.ip_local_port_range='40000 40000'", "net.ipv4.ip_autobind_reuse=0"],
        "linux-one-ephemeral-port",
    )
    by = {r["name"]: r for r in data["results"]}
    assert data["run_info"]["host"]["sysctl"]["net.ipv4.ip_local_port_range"] == "40000 40000"
    held = by["port-0-next-to-a-held-port-reuseaddr[tcp]"]
    assert (held["status"], held["observed"]["outcome"]) == ("pass", "INUSE"), data["stdout"]
    assert by["port-0-over-a-time-wait-entry-reuseaddr[tcp]"]["observed"]["outcome"] == "INUSE"
    assert by["just-closed-port-comes-back[tcp]"]["observed"]["steps"][-1]["came_back"] == 100
    failed = [n for n, r in by.items() if r["status"] == "fail"]
    assert not failed, data["stdout"]


@sysctl_ns
def test_with_autobind_reuse_bind_0_hands_out_the_held_port(tmp_path: Path) -> None:
    data = run_in_namespace(
        tmp_path,
        "port-zero",
        ["net.ipv4.ip_local_port_range='40000 40000'", "net.ipv4.ip_autobind_reuse=1"],
        "linux-one-ephemeral-port-autobind-reuse",
    )
    by = {r["name"]: r for r in data["results"]}
    held = by["port-0-next-to-a-held-port-reuseaddr[tcp]"]
    assert (held["status"], held["observed"]["outcome"]) == ("pass", "same"), data["stdout"]
    assert ports_of(held) == {"a": 40000, "b": 40000}
    tw = by["port-0-over-a-time-wait-entry-reuseaddr[tcp]"]
    assert (tw["status"], tw["observed"]["outcome"]) == ("pass", "same"), data["stdout"]


@sysctl_ns
def test_with_unprivileged_port_start_0_nobody_binds_below_1024(tmp_path: Path) -> None:
    data = run_in_namespace(
        tmp_path,
        "privileged-ports",
        ["net.ipv4.ip_unprivileged_port_start=0"],
        "linux-unprivileged-port-start-0",
    )
    results = data["results"]
    assert results and {r["status"] for r in results} == {"pass"}, data["stdout"]
    low = next(r for r in results if r["name"] == "privileged-port-on-a-specific-address[tcp4]")
    assert low["observed"]["outcome"] == "ok"
    assert low["verdicts"] == {"linux-unprivileged-port-start-0": "agree"}  # 'linux' assumes 1024
    assert 600 <= ports_of(low)["a"] <= 1023  # type: ignore[operator]


# -- the allocator's privileged ports ---------------------------------------------------


def free_low_port() -> int:
    for port in range(1023, 599, -1):
        if not proof(port, HOST)[0]:
            return port
    pytest.skip("no free port below 1024 here")


@pytest.mark.skipif(not HOST.admin, reason="proving a port below 1024 free needs privileges")
def test_a_held_privileged_port_is_passed_over_and_the_next_one_proven() -> None:
    held = free_low_port()
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", held))
        allocator = PortAllocator(HOST, range(30000, 30001), range(held, held + 2))
        port, proven = allocator.take_privileged()
        assert (port, proven, allocator.skipped) == (held + 1, True, 1)


@pytest.mark.skipif(not HOST.admin, reason="proving a port below 1024 free needs privileges")
def test_every_privileged_port_held_is_interference() -> None:
    from pytest_bindconform.ports import Interference

    held = free_low_port()
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", held))
        allocator = PortAllocator(HOST, range(30000, 30001), range(held, held + 1))
        with pytest.raises(Interference, match=r"no free port in \d+-\d+ \(below 1024\)"):
            allocator.take_privileged()


@pytest.mark.skipif(
    not (HOST.admin and hasattr(os, "fork") and hasattr(os, "setuid")),
    reason="needs root to become 'nobody' in a forked child",
)
def test_an_unprivileged_run_gets_its_privileged_port_unproven() -> None:
    """The proof itself meets EACCES there: the port is handed out, marked unproven."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            answer = PortAllocator(HOST, range(30000, 30001), range(700, 702)).take_privileged()
            os.write(write, json.dumps(answer).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        answer = json.loads(fh.read() or "null")
    os.waitpid(pid, 0)
    start = HOST.sysctl.get("net.ipv4.ip_unprivileged_port_start", "1024")
    if int(start) <= 700:
        pytest.skip(f"ports from {start} up are not privileged here")
    assert answer == [700, False]


# -- the case format ----------------------------------------------------------------------

SUITE = """\
format: 1
id: own-ports
title: own ports
references: []
oracles:
  linux: {kind: measured, source: here, applies: {os: linux}}
cases:
  - id: one
    sockets:
      a: {port: 0}
      b: {port: %s}
    steps: [%s]
    expect: {linux: %s}
"""


def load(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "x.bind.yaml"
    path.write_text(text)
    try:
        cases.load_suite(path)
    except CaseFileError as exc:
        return [str(e) for e in exc.errors]
    return []


def test_the_port_kinds_load(tmp_path: Path) -> None:
    for port, steps, outcome in (
        ("0", "bind a, bind b, compare-ports a b", "differ"),
        ("same-as a", "bind a, bind b, compare-ports b a", "same"),
        ("privileged", "bind a, bind b", "ACCESS"),
        ("0", "bind a, rebind a", "differ"),
    ):
        assert load(tmp_path, SUITE % (port, steps, outcome)) == [], port
    path = tmp_path / "x.bind.yaml"
    cell = cases.load_suite(path).cells[0]
    assert [s.port for s in cell.sockets] == ["0", "0"]


def test_a_misspelt_port_names_the_valid_choices_where_it_is(tmp_path: Path) -> None:
    errors = load(tmp_path, SUITE % ("same-as", "bind a, bind b", "ok"))
    assert len(errors) == 1, errors
    assert "x.bind.yaml:11:17:" in errors[0], errors
    assert "valid choices: 0, privileged, same-as <socket>" in errors[0], errors


def test_same_as_an_unknown_socket_lists_the_sockets(tmp_path: Path) -> None:
    errors = load(tmp_path, SUITE % ("same-as z", "bind a, bind b", "ok"))
    assert len(errors) == 1 and "x.bind.yaml:11:17:" in errors[0], errors
    assert "valid choices: same-as a" in errors[0], errors


def test_a_misspelt_outcome_lists_same_and_differ(tmp_path: Path) -> None:
    errors = load(tmp_path, SUITE % ("0", "bind a, bind b, compare-ports a b", "different"))
    assert len(errors) == 1 and "same, differ" in errors[0], errors


def test_the_models_make_no_claim_on_a_socket_with_its_own_port() -> None:
    """They know one port shared by every socket: a kernel's pick is beyond them."""
    for name in SUITES:
        suite = cases.load_suite(ROOT / "cases" / f"{name}.bind.yaml")
        for cell in suite.cells:
            for os_family in ("linux", "freebsd", "darwin", "windows"):
                said = predict(os_family, cell, None)
                assert (said.outcome, said.receiver) == ("unknown", "unknown"), cell.name
