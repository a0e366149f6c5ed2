"""The probe on this machine's real sockets: outcomes, raw errors, and nothing left open."""

from __future__ import annotations

import ctypes
import errno
import gc
import itertools
import os
import socket
import struct
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_bindconform import ownerpool, ownports, probe
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
    ownerpool.settle()  # child owners close a cell's sockets by the time anyone needs them
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


def test_a_socket_is_made_with_its_first_call_in_one_round_trip(tmp_path, monkeypatch) -> None:
    """Creation and options travel with the socket's first call (one batch), recorded as
    separate steps exactly as if each had been sent alone."""
    sent: list[str] = []
    real = ownerpool.Helper.do

    def counting(self: ownerpool.Helper, req: dict[str, Any]) -> dict[str, Any]:
        sent.append(req["op"])
        return real(self, req)

    monkeypatch.setattr(ownerpool.Helper, "do", counting)
    sockets = "{a: {owner: process, options: [SO_REUSEADDR], address: specific}}"
    observation = observe(cell_of(tmp_path, sockets, "bind a, listen a"))
    # the cell's end sends nothing; the reset is observe()'s settle(), for its port proof
    assert sent == ["batch", "listen", "reset"]
    assert steps_of(observation) == [
        ("a", "socket", "ok", ""),
        ("a", "setsockopt SO_REUSEADDR", "ok", ""),
        ("a", "bind", "ok", ""),
        ("a", "listen", "ok", ""),
    ]


def test_a_socket_that_cannot_be_made_leaves_its_first_call_not_run(tmp_path, monkeypatch):
    """The batch stops at the failing option: the bind it carried is not run, and the
    cell's outcome is the option's."""
    failing = [{"option": "IPV6_V6ONLY", "value": 1}]  # refused on an IPv4 socket
    monkeypatch.setattr(ownports.OwnPorts, "option_requests", staticmethod(lambda p: failing))
    observation = observe(cell_of(tmp_path, "{a: {address: specific}}", "bind a, listen a"))
    setsockopt, bind, listen = steps_of(observation)[1:]
    assert setsockopt[:2] == ("a", "setsockopt IPV6_V6ONLY") and setsockopt[2] != "ok"
    assert (bind, listen) == (("a", "bind", probe.NOT_RUN, ""), ("a", "listen", probe.NOT_RUN, ""))
    assert observation.outcome == setsockopt[2]


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


# -- no packet ever leaves the host (issue 12, item 3) -----------------------------------

from pytest_bindconform import delivery, locality  # noqa: E402
from pytest_bindconform.ops import Executor  # noqa: E402
from pytest_bindconform.ports import Interference  # noqa: E402


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("127.0.0.9", True),  # all of 127/8 is routed to loopback
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", True),
        ("::ffff:0.0.0.0", True),
        ("224.0.0.251", True),  # a group: bindable; the probe keeps its traffic on loopback
        ("8.8.8.8", False),
        ("::ffff:8.8.8.8", False),
        ("2001:4860:4860::8888", False),
        ("255.255.255.255", False),
        ("192.0.2.77", False),
    ],
)
def test_only_loopback_and_own_addresses_are_local(address: str, local: bool) -> None:
    assert (locality.not_local(address) == "") is local


def test_every_interface_address_of_this_host_is_local() -> None:
    found = locality.interface_addresses()
    assert locality.parse("127.0.0.1") in found
    for ip in found:
        assert locality.not_local(str(ip)) == ""


@pytest.mark.parametrize("address", ["8.8.8.8", "::ffff:8.8.8.8", "10.1.2.3", "fd00::1"])
def test_skip_advice_never_suggests_taking_over_an_address(address: str) -> None:
    text = locality.advice(address, "inet", "linux")
    assert "ip addr add" not in text and "alias" not in text
    assert "127.0.0.2" in text  # what to write instead


def test_skip_advice_for_a_documentation_address_says_how_to_add_it() -> None:
    assert locality.advice("2001:db8::7", "inet6", "linux") == (
        "add it to loopback: sudo ip addr add 2001:db8::7/128 dev lo"
    )


def test_bsd_and_linux_sockaddr_layouts() -> None:
    """getifaddrs() gives struct sockaddr; BSD puts sa_len before a 1-byte sa_family."""
    v4 = socket.inet_aton("10.1.2.3")
    v6 = socket.inet_pton(socket.AF_INET6, "2001:db8::5")
    linux4 = struct.pack("=HH4s8x", socket.AF_INET, 0, v4) + bytes(12)
    bsd4 = struct.pack("BBH4s8x", 16, socket.AF_INET, 0, v4) + bytes(12)
    linux6 = struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, v6, 0)
    bsd6 = struct.pack("BBHI16sI", 28, socket.AF_INET6, 0, 0, v6, 0)
    assert locality.sockaddr_text(linux4, bsd_layout=False) == "10.1.2.3"
    assert locality.sockaddr_text(bsd4, bsd_layout=True) == "10.1.2.3"
    assert locality.sockaddr_text(linux6, bsd_layout=False) == "2001:db8::5"
    assert locality.sockaddr_text(bsd6, bsd_layout=True) == "2001:db8::5"


def test_windows_unicast_table_layout() -> None:
    """MIB_UNICASTIPADDRESS_ROW (netioapi.h): SOCKADDR_INET (28 bytes), then NET_LUID at
    offset 32; 80 bytes in all (learn.microsoft.com/windows/win32/api/netioapi/
    ns-netioapi-mib_unicastipaddress_row). Rows are read from raw memory on Windows."""
    row = locality._UnicastRow
    assert ctypes.sizeof(row) == 80
    assert row.InterfaceLuid.offset == 32
    assert locality._UnicastTable.Table.offset == 8
    rows = (row * 2)()
    raw4 = struct.pack("<HH4s8x", locality.WIN_AF_INET, 0, socket.inet_aton("10.0.0.7"))
    raw6 = struct.pack(
        "<HHI16sI", locality.WIN_AF_INET6, 0, 0, socket.inet_pton(socket.AF_INET6, "fe80::1"), 3
    )
    ctypes.memmove(ctypes.addressof(rows[0]), raw4, len(raw4))
    ctypes.memmove(ctypes.addressof(rows[1]), raw6, len(raw6))
    assert locality.unicast_rows_text(list(rows)) == ["10.0.0.7", "fe80::1"]


LEAK_CASE = """\
format: 1
id: leak
title: addresses off the host
references: []
oracles: {here: {kind: measured, source: this test, applies: {os: linux}}}
cases:
"""
for name, family, address in [
    ("group", "inet", "224.0.0.251"),
    ("mapped-public", "inet6", "::ffff:8.8.8.8"),
    ("public", "inet", "8.8.8.8"),
    ("broadcast", "inet", "255.255.255.255"),
    ("own-interface", "inet", "10.9.0.1"),
]:
    LEAK_CASE += f"""\
  - id: {name}
    sockets:
      a: {{family: {family}, type: dgram, options: [SO_REUSEADDR], address: "{address}"}}
      b: {{family: {family}, type: dgram, options: [SO_REUSEADDR], address: "{address}"}}
    steps: [bind a, bind b]
    expect: {{here: ok}}
"""
LEAK_CASE += """\
  - id: connect-public
    sockets:
      a: {family: inet6, v6only: false, address: "::ffff:8.8.8.8"}
      c: {family: inet6}
    steps: [bind a, listen a, connect c a]
    expect: {here: ok}
"""

# Counts every TCP/UDP frame that goes out of v0, the namespace's default route, while
# the cells run (IPv6's own router solicitations and MLD reports are not ours).
LEAK_DRIVER = """
import json, socket, struct, sys
from pytest_bindconform import cases, probe
from pytest_bindconform.host import fingerprint
tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
tap.bind(("v0", 0))
tap.setblocking(False)
host = fingerprint()
out = {}
for port, cell in enumerate(cases.load_suite(sys.argv[1]).cells, start=25000):
    try:
        planned = probe.plan(cell, None, host)
    except probe.Unrunnable as exc:
        out[cell.name] = "skip: " + str(exc)
        continue
    seen = probe.run(cell, planned, port, host)
    out[cell.name] = seen.delivery and seen.delivery["sent"]
left = []
while True:
    try:
        frame, where = tap.recvfrom(65535)
    except BlockingIOError:
        break
    kind = struct.unpack("!H", frame[12:14])[0]
    proto = frame[23] if kind == 0x800 else frame[20] if kind == 0x86DD else None
    if where[2] == socket.PACKET_OUTGOING and proto in (6, 17):
        left.append(frame[:60].hex())
print(json.dumps({"cells": out, "left": left}))
"""

NETNS_WITH_ROUTE = """set -e
ip link set lo up
ip link add v0 type veth peer name v1
ip link set v1 up
ip link set v0 up
ip addr add 10.9.0.1/24 dev v0
ip -6 addr add 2001:db8:9::1/64 dev v0 nodad
ip route add default via 10.9.0.2 dev v0
ip -6 route add default via 2001:db8:9::2 dev v0
sysctl -qw net.ipv4.ip_nonlocal_bind=1 net.ipv6.ip_nonlocal_bind=1
exec "$@"
"""


def in_netns(script: str, *argv: str, timeout: float = 120) -> str:
    """Run argv in a fresh network namespace prepared by script (root, unshare, ip)."""
    import shutil
    import subprocess

    if OS != "linux" or os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare(1) and ip(8) on Linux for a private namespace")
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, "netns", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip(f"namespaces are not permitted here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_no_packet_leaves_the_host_whatever_the_case_names(tmp_path: Path) -> None:
    """A namespace with a default route, where even non-local binds succeed: every cell
    runs or skips, and not one TCP/UDP frame goes out of its interface."""
    import json
    import sys

    path = tmp_path / "leak.bind.yaml"
    path.write_text(LEAK_CASE)
    driver = tmp_path / "driver.py"
    driver.write_text(LEAK_DRIVER)
    result = json.loads(in_netns(NETNS_WITH_ROUTE, sys.executable, str(driver), str(path)))
    cells = result["cells"]
    assert result["left"] == []
    assert cells["group"] == 16  # the group's traffic was sent, on loopback
    assert cells["own-interface"] == 16  # an address of this host's own interface
    for name in ("mapped-public", "public", "broadcast", "connect-public"):
        assert cells[name].startswith("skip: "), (name, cells[name])
        assert "could leave this host" in cells[name]
        assert "ip addr add" not in cells[name]


def test_multicast_probe_clients_stay_on_loopback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        delivery.pin_multicast(s, "inet")
        assert s.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL) == 0
        assert s.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP) == 1
        where = s.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, 4)
        assert socket.inet_ntoa(where) == "127.0.0.1"
    if HOST.ipv6:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            delivery.pin_multicast(s, "inet6")
            assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS) == 0
            assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF) == (
                delivery.loopback_index()
            )


# -- delivery probes tell their own traffic from anyone else's (issue 12, item 2) --------


def _udp_pair(port: int) -> Executor:
    here = Executor()
    for name in ("a", "b"):
        here.do({"socket": name, "op": "socket", "family": "inet", "type": "dgram"})
        here.do({"socket": name, "op": "setsockopt", "option": "SO_REUSEADDR"})
        assert (
            here.do({"socket": name, "op": "bind", "address": "127.0.0.1", "port": port})["outcome"]
            == "ok"
        )
    return here


def _probe(here: Executor, port: int, kind: str = "dgram") -> delivery.Probe:
    return delivery.Probe(kind, "127.0.0.1", port, {"a": here, "b": here}, 16, set())


@linux_only
def test_delivery_counts_its_own_datagrams() -> None:
    port = next(p for p in PORTS if is_free(p, HOST))
    here = _udp_pair(port)
    try:
        seen = _probe(here, port).run()
    finally:
        here.close_all()
    assert seen["sent"] == seen["planned"] == 16
    assert seen["received"] == {"a": 0, "b": 16}  # Linux: unicast to the last bound
    assert seen["receiver"] == "b"


@linux_only
@pytest.mark.parametrize("payload", [b"hello", b"bindconform 0123456789abcdef 0\n"])
def test_a_foreign_datagram_is_interference_not_a_receiver(payload: bytes) -> None:
    """A sender that holds no port: its datagram sits in a's queue (SO_REUSEADDR: Linux
    delivers unicast to the last bound, so it was sent before b existed)."""
    port = next(p for p in PORTS if is_free(p, HOST))
    here = Executor()
    here.do({"socket": "a", "op": "socket", "family": "inet", "type": "dgram"})
    here.do({"socket": "a", "op": "setsockopt", "option": "SO_REUSEADDR"})
    here.do({"socket": "a", "op": "bind", "address": "127.0.0.1", "port": port})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(payload, ("127.0.0.1", port))
        sender_port = sender.getsockname()[1]
        here.do({"socket": "b", "op": "socket", "family": "inet", "type": "dgram"})
        here.do({"socket": "b", "op": "setsockopt", "option": "SO_REUSEADDR"})
        here.do({"socket": "b", "op": "bind", "address": "127.0.0.1", "port": port})
        try:
            with pytest.raises(Interference) as info:
                _probe(here, port).run()
        finally:
            here.close_all()
    assert f"a received a datagram from 127.0.0.1 port {sender_port}" in str(info.value)


def test_a_foreign_connection_is_interference_not_a_receiver() -> None:
    port = next(p for p in PORTS if is_free(p, HOST))
    here = Executor()
    for name in ("a", "b"):
        here.do({"socket": name, "op": "socket", "family": "inet", "type": "stream"})
    here.do({"socket": "a", "op": "bind", "address": "127.0.0.1", "port": port})
    here.do({"socket": "a", "op": "listen"})
    stranger = socket.create_connection(("127.0.0.1", port))
    stranger_port = stranger.getsockname()[1]
    try:
        with pytest.raises(Interference) as info:
            delivery.Probe("stream", "127.0.0.1", port, {"a": here}, 4, set()).run()
    finally:
        stranger.close()
        here.close_all()
    assert f"from 127.0.0.1 port {stranger_port}" in str(info.value)
    assert "no probe client sent" in str(info.value)


def test_a_probe_that_cannot_send_names_no_receiver() -> None:
    port = next(p for p in PORTS if is_free(p, HOST))
    here = Executor()
    here.do({"socket": "a", "op": "socket", "family": "inet", "type": "stream"})
    here.do({"socket": "a", "op": "bind", "address": "127.0.0.1", "port": port})  # no listen
    try:
        seen = delivery.Probe("stream", "127.0.0.1", port, {"a": here}, 16, set()).run()
    finally:
        here.close_all()
    assert seen["receiver"] is None
    assert seen["sent"] == 0 and seen["planned"] == 16
    assert "REFUSED" in seen["failure"] or "ECONNREFUSED" in seen["failure"]


def test_delivery_probes_follow_the_cell(tmp_path: Path) -> None:
    sock = "{type: dgram, options: [SO_REUSEADDR], address: specific}"
    cell = cell_of(tmp_path, f"{{a: {sock}, b: {sock}}}", "bind a, bind b")
    if OS != "linux":
        pytest.skip("Linux: two SO_REUSEADDR UDP sockets share a port")
    from dataclasses import replace

    seen = observe(replace(cell, delivery_probes=5))
    assert seen.delivery is not None
    assert (seen.delivery["planned"], seen.delivery["sent"]) == (5, 5)
    assert sum(seen.delivery["received"].values()) == 5


# -- v4-mapped targets where IPV6_V6ONLY defaults to 1 (issue 9, defect 2) ---------------

BINDV6ONLY = """set -e
ip link set lo up
sysctl -qw net.ipv6.bindv6only=1
exec "$@"
"""
MAPPED_CASE = """\
format: 1
id: mapped
title: v4-mapped deliveries
references: []
oracles: {here: {kind: measured, source: this test, applies: {os: linux}}}
cases:
  - id: mapped
    sockets:
      a: {type: dgram, options: [SO_REUSEADDR, SO_REUSEPORT], address: wildcard}
      b: {family: inet6, v6only: false, type: dgram, options: [SO_REUSEADDR, SO_REUSEPORT],
          address: v4mapped-specific}
    steps: [bind a, bind b]
    expect: {here: ok}
"""


@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]])
def test_v4_mapped_deliveries_send_where_v6only_defaults_to_1(
    tmp_path: Path, workers: list[str]
) -> None:
    """Windows and FreeBSD default IPV6_V6ONLY to 1, like Linux with bindv6only=1: a
    delivery probe to a v4-mapped target must still send all it planned, and a probe
    that sent less must never name a receiver."""
    import json
    import sys

    report = tmp_path / "report.json"
    case = tmp_path / "mapped.bind.yaml"
    case.write_text(MAPPED_CASE)
    in_netns(
        BINDV6ONLY,
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *workers,
        str(case),
        f"--bindconform-json={report}",
        "--rootdir",
        str(tmp_path),
    )
    deliveries = [
        d
        for r in json.loads(report.read_text())["results"]
        if r["observed"]
        for d in [r["observed"]["delivery"], *r["observed"].get("delivery_reruns", [])]
        if d is not None
    ]
    mapped = [d for d in deliveries if d["target"].startswith("::ffff:")]
    assert len(mapped) == 1
    for d in deliveries:
        assert d["receiver"] is None or d["sent"] == d["planned"], d
    assert all(d["sent"] == d["planned"] == 16 for d in mapped)
