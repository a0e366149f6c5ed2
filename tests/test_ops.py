"""Socket operations by name: every blocking call is bounded, and a timeout is an outcome."""

from __future__ import annotations

import time

from pytest_bindconform import platforms
from pytest_bindconform.ops import TIMEOUT, Executor
from pytest_bindconform.platforms.windows import parse_dynamic_range, parse_excluded_ranges


def test_accept_with_nothing_pending_times_out_instead_of_hanging() -> None:
    ex = Executor()
    try:
        ex.do({"socket": "l", "op": "socket", "family": "inet", "type": "stream"})
        ex.do({"socket": "l", "op": "bind", "address": "127.0.0.1", "port": 0})
        ex.do({"socket": "l", "op": "listen"})
        start = time.monotonic()
        answer = ex.do({"socket": "l", "op": "accept", "into": "l.conn", "timeout": 0.05})
        assert answer["outcome"] == "TIMEOUT"
        assert time.monotonic() - start < 1.0
    finally:
        ex.close_all()


def test_recv_without_data_times_out() -> None:
    ex = Executor()
    try:
        ex.do({"socket": "u", "op": "socket", "family": "inet", "type": "dgram"})
        ex.do({"socket": "u", "op": "bind", "address": "127.0.0.1", "port": 0})
        assert ex.do({"socket": "u", "op": "recv", "timeout": 0.05})["outcome"] == "TIMEOUT"
    finally:
        ex.close_all()


def test_connect_to_nothing_is_refused_with_its_raw_error() -> None:
    ex = Executor()
    try:
        ex.do({"socket": "l", "op": "socket", "family": "inet", "type": "stream"})
        ex.do({"socket": "l", "op": "bind", "address": "127.0.0.1", "port": 0})
        port = ex.socks["l"].getsockname()[1]  # bound, not listening: nobody accepts
        ex.do({"socket": "c", "op": "socket", "family": "inet", "type": "stream"})
        answer = ex.do({"socket": "c", "op": "connect", "address": "127.0.0.1", "port": port})
        assert (answer["outcome"], answer["error"]) == ("REFUSED", "ECONNREFUSED")
    finally:
        ex.close_all()


def test_a_batch_stops_at_the_first_failure() -> None:
    ex = Executor()
    try:
        answer = ex.do(
            {
                "op": "batch",
                "requests": [
                    {"socket": "a", "op": "socket", "family": "inet", "type": "stream"},
                    {"socket": "a", "op": "setsockopt", "option": "IPV6_V6ONLY", "value": 1},
                    {"socket": "a", "op": "bind", "address": "127.0.0.1", "port": 0},
                ],
            }
        )
        outcomes = [(a["call"], a["outcome"] == "ok") for a in answer["answers"]]
        assert outcomes == [("socket", True), ("setsockopt", False)]  # IPv6 option, IPv4 socket
    finally:
        ex.close_all()


def test_a_drain_does_not_wait_for_bytes_from_the_cells_own_connection() -> None:
    """The cell's own connect may send nothing: its connection is counted without waiting
    `read` seconds for first bytes (a stranger's is still waited for)."""
    ex = Executor()
    try:
        ex.do({"socket": "l", "op": "socket", "family": "inet", "type": "stream"})
        ex.do({"socket": "l", "op": "bind", "address": "127.0.0.1", "port": 0})
        ex.do({"socket": "l", "op": "listen"})
        port = ex.socks["l"].getsockname()[1]
        ex.do({"socket": "c", "op": "socket", "family": "inet", "type": "stream"})
        ex.do({"socket": "c", "op": "connect", "address": "127.0.0.1", "port": port})
        own = [list(ex.socks["c"].getsockname())]
        start = time.monotonic()
        answer = ex.do(
            {"socket": "l", "op": "drain", "wait": 0.5, "seen": True, "read": 30, "own": own}
        )
        assert time.monotonic() - start < 10, "it waited for bytes its own client never sends"
        assert answer["count"] == 1 and answer["seen"] == [[*own[0], ""]]
    finally:
        ex.close_all()


def test_empty_netsh_output_means_no_ranges() -> None:
    """Real netsh outputs are in tests/test_platforms.py (recorded fixtures)."""
    assert parse_excluded_ranges("") == []
    assert parse_dynamic_range("") is None


def test_every_blocking_call_records_the_limit_it_had_and_why() -> None:
    ex = Executor()
    try:
        ex.do({"socket": "l", "op": "socket", "family": "inet", "type": "stream"})
        ex.do({"socket": "l", "op": "bind", "address": "127.0.0.1", "port": 0})
        port = ex.socks["l"].getsockname()[1]
        ex.do({"socket": "c", "op": "socket", "family": "inet", "type": "stream"})
        refused = ex.do({"socket": "c", "op": "connect", "address": "127.0.0.1", "port": port})
        seconds, basis = platforms.current.connect_limit(TIMEOUT)
        assert (refused["timeout"], refused["timeout_basis"]) == (seconds, basis)
        assert refused["timeout"] >= TIMEOUT
        ex.do({"socket": "l", "op": "listen"})
        waited = ex.do({"socket": "l", "op": "accept", "into": "l.conn", "timeout": 0.01})
        assert (waited["outcome"], waited["timeout"]) == ("TIMEOUT", 0.01)
        assert "probe limit" in waited["timeout_basis"]
        bound = ex.do({"socket": "x", "op": "socket", "family": "inet", "type": "dgram"})
        assert "timeout" not in bound  # a call that cannot block has none
    finally:
        ex.close_all()


def test_the_allocator_never_hands_out_a_windows_excluded_port() -> None:
    import dataclasses

    from pytest_bindconform.host import fingerprint
    from pytest_bindconform.ports import PortAllocator

    host = dataclasses.replace(fingerprint(), excluded_ports=((33000, 33004),))
    ports = PortAllocator(host, range(33000, 33008))
    assert ports.take() == 33005
