"""The probe on this machine's real sockets: outcomes, raw errors, and nothing left open."""

from __future__ import annotations

import errno
import gc
import itertools
import os
import socket
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_bindconform import probe
from pytest_bindconform.cases import load_suite
from pytest_bindconform.host import fingerprint, os_family
from pytest_bindconform.model import Cell
from pytest_bindconform.ports import is_free, worker_slice

HOST = fingerprint()
OS = os_family()
# Each xdist worker running these tests probes its own ports, below the ephemeral range.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
PORTS = itertools.cycle(worker_slice(32100, 32499, _WORKER, 4))
needs_ipv6 = pytest.mark.skipif(not HOST.ipv6, reason="this host has no IPv6 on loopback")
linux_only = pytest.mark.skipif(OS != "linux", reason="Linux semantics")

CASE = """\
format: 1
id: probe
title: probe
references: []
oracles: {{here: {{kind: measured, source: this test, applies: {{os: {os}}}}}}}
cases:
  - id: c
    sockets: {sockets}
    steps: [{steps}]
    expect: {{here: ok}}
"""


def cell_of(tmp_path: Path, sockets: str, steps: str) -> Cell:
    path = tmp_path / "probe.bind.yaml"
    path.write_text(CASE.format(os=OS, sockets=sockets, steps=steps))
    (cell,) = load_suite(path).cells
    return cell


def observe(cell: Cell) -> probe.Observation:
    planned = probe.plan(cell, None, HOST)
    port = next(p for p in PORTS if is_free(p, HOST))
    observation = probe.run(cell, planned, port, HOST)
    assert is_free(port, HOST), "the probe left something bound on the port"
    return observation


def steps_of(observation: probe.Observation) -> list[tuple[Any, ...]]:
    return [(s["socket"], s["call"], s["outcome"], s["error"]) for s in observation.steps]


INUSE_NAME = "WSAEADDRINUSE" if OS == "windows" else "EADDRINUSE"


@pytest.mark.parametrize("kind", ["stream", "dgram"])
@pytest.mark.parametrize("family", ["inet", pytest.param("inet6", marks=needs_ipv6)])
def test_two_plain_binds_of_one_address_collide(tmp_path: Path, family: str, kind: str) -> None:
    sock = f"{{family: {family}, type: {kind}, address: specific}}"
    observation = observe(cell_of(tmp_path, f"{{a: {sock}, b: {sock}}}", "bind a, bind b"))
    assert observation.outcome == "INUSE"
    assert steps_of(observation) == [
        ("a", "socket", "ok", ""),
        ("a", "bind", "ok", ""),
        ("b", "socket", "ok", ""),
        ("b", "bind", "INUSE", INUSE_NAME),
    ]
    assert observation.steps[-1]["errno"] in (errno.EADDRINUSE, 10048)


def test_two_addresses_do_not_collide(tmp_path: Path) -> None:
    if HOST.specific("inet", 1) is None:
        pytest.skip("needs 127.0.0.2 on loopback")
    cell = cell_of(tmp_path, "{a: {address: specific}, b: {address: specific2}}", "bind a, bind b")
    assert observe(cell).outcome == "ok"


@linux_only
def test_reuseaddr_shares_until_one_listens(tmp_path: Path) -> None:
    """Linux: two SO_REUSEADDR TCP sockets may bind one address unless one listens."""
    sock = "{options: [SO_REUSEADDR], address: specific}"
    sockets = f"{{a: {sock}, b: {sock}}}"
    bound = observe(cell_of(tmp_path, sockets, "bind a, bind b"))
    assert bound.outcome == "ok"
    assert ("b", "setsockopt SO_REUSEADDR", "ok", "") in steps_of(bound)
    listening = observe(cell_of(tmp_path, sockets, "bind a, listen a, bind b"))
    assert listening.outcome == "INUSE"
    assert ("a", "listen", "ok", "") in steps_of(listening)
    assert listening.states == {"a": "listening", "b": "unbound"}


@linux_only
@needs_ipv6
@pytest.mark.parametrize(("v6only", "outcome"), [("false", "INUSE"), ("true", "ok")])
def test_dual_stack_wildcard_covers_ipv4(tmp_path: Path, v6only: str, outcome: str) -> None:
    sockets = f"{{a: {{family: inet6, v6only: {v6only}}}, b: {{family: inet}}}}"
    observation = observe(cell_of(tmp_path, sockets, "bind a, bind b"))
    assert observation.outcome == outcome
    assert ("a", "setsockopt IPV6_V6ONLY", "ok", "") in steps_of(observation)


def test_a_step_after_a_failed_call_is_not_run(tmp_path: Path) -> None:
    sock = "{address: specific}"
    observation = observe(
        cell_of(tmp_path, f"{{a: {sock}, b: {sock}}}", "bind a, bind b, listen b")
    )
    assert steps_of(observation)[-1] == ("b", "listen", probe.NOT_RUN, "")
    assert observation.outcome == "INUSE"  # the last step is under test: the bind's outcome


# -- normalisation of real errors ------------------------------------------------------


def test_eaddrinuse_is_inuse() -> None:
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        with pytest.raises(OSError) as info:
            b.bind(a.getsockname())
    assert probe.normalise(info.value) == ("INUSE", errno.EADDRINUSE, "EADDRINUSE")


def test_eaddrnotavail_is_addrnotavail() -> None:
    with socket.socket() as s, pytest.raises(OSError) as info:
        s.bind(("192.0.2.1", 0))  # TEST-NET-1: configured nowhere; a bind sends nothing
    assert probe.normalise(info.value) == ("ADDRNOTAVAIL", errno.EADDRNOTAVAIL, "EADDRNOTAVAIL")


def test_einval_is_inval() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        with pytest.raises(OSError) as info:
            s.bind(("127.0.0.1", 0))  # a socket binds once
    assert probe.normalise(info.value) == ("INVAL", errno.EINVAL, "EINVAL")


@linux_only
def test_enoprotoopt_is_notsup() -> None:
    with socket.socket(socket.AF_INET) as s, pytest.raises(OSError) as info:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    assert probe.normalise(info.value) == ("NOTSUP", errno.ENOPROTOOPT, "ENOPROTOOPT")


def _bind_as_nobody(port: int) -> str:
    """Fork, drop root in the child, bind, and report the normalised error."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the child only binds and exits
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                    result = "bound"
                except OSError as exc:
                    result = " ".join(map(str, probe.normalise(exc)))
            os.write(write_end, result.encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        result = fh.read()
    os.waitpid(pid, 0)
    return result


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX privileges")
def test_eacces_is_access() -> None:
    """A privileged port as an unprivileged user (the child drops root when we are root)."""
    start = int(HOST.sysctl.get("net.ipv4.ip_unprivileged_port_start", "1024"))
    if start < 2:
        pytest.skip("every port is unprivileged on this host")
    if os.geteuid() == 0:
        result = _bind_as_nobody(start - 1)
    else:
        with socket.socket() as s, pytest.raises(OSError) as info:
            s.bind(("127.0.0.1", start - 1))
        result = " ".join(map(str, probe.normalise(info.value)))
    assert result == f"ACCESS {errno.EACCES} EACCES"


@pytest.mark.parametrize(
    ("code", "outcome", "name"),
    [
        (10048, "INUSE", "WSAEADDRINUSE"),
        (10013, "ACCESS", "WSAEACCES"),
        (10049, "ADDRNOTAVAIL", "WSAEADDRNOTAVAIL"),
        (10022, "INVAL", "WSAEINVAL"),
        (10042, "NOTSUP", "WSAENOPROTOOPT"),
    ],
)
def test_winsock_codes_fold_into_the_same_outcomes(code: int, outcome: str, name: str) -> None:
    """Windows reports WSA codes in OSError.winerror; the table must fold them too."""
    exc = OSError(0, "from Windows")
    exc.winerror = code  # type: ignore[attr-defined]  # what CPython sets on Windows
    assert probe.normalise(exc) == (outcome, code, name)


# -- every socket is closed, whatever happens ------------------------------------------


def open_fds() -> int:
    for where in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(where):
            return len(os.listdir(where))
    pytest.skip("cannot count open file descriptors here")


def unclosed_sockets(warnings_seen: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in warnings_seen if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("steps", ["bind a, bind b", "bind a, listen a, bind b, listen b"])
def test_sockets_are_closed_after_a_run(tmp_path: Path, steps: str) -> None:
    """Closed by the probe, not by the garbage collector (which warns when it has to)."""
    cell = cell_of(tmp_path, "{a: {address: specific}, b: {address: specific}}", steps)
    before = open_fds()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        observe(cell)
        gc.collect()
    assert unclosed_sockets(seen) == []
    assert open_fds() == before


def test_sockets_are_closed_when_a_call_raises(tmp_path: Path) -> None:
    """A port out of range makes bind() raise OverflowError, not OSError, mid-run."""
    cell = cell_of(tmp_path, "{a: {address: specific}, b: {address: specific}}", "bind a, bind b")
    planned = probe.plan(cell, None, HOST)
    before = open_fds()
    try:
        probe.run(cell, planned, 70000, HOST)
    except OverflowError:
        # the failing frames are still alive here: only an explicit close() freed the fd
        assert open_fds() == before
    else:
        pytest.fail("bind() to port 70000 did not raise")
