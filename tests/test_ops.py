"""Socket operations by name: every blocking call is bounded, and a timeout is an outcome."""

from __future__ import annotations

import time

from pytest_bindconform.ops import Executor
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


NETSH_EXCLUDED = """
Protocol tcp Port Exclusion Ranges

Start Port    End Port
----------    --------
      5357        5357
     50000       50059     *
     61000       61099

* - Administered port exclusions.
"""

NETSH_DYNAMIC = """
Protocol tcp Dynamic Port Range
---------------------------------
Start Port      : 49152
Number of Ports : 16384
"""


def test_windows_excluded_and_dynamic_port_ranges_are_read_from_netsh() -> None:
    assert parse_excluded_ranges(NETSH_EXCLUDED) == [(5357, 5357), (50000, 50059), (61000, 61099)]
    assert parse_dynamic_range(NETSH_DYNAMIC) == (49152, 65535)
    assert parse_excluded_ranges("") == []
    assert parse_dynamic_range("") is None


def test_the_allocator_never_hands_out_a_windows_excluded_port() -> None:
    import dataclasses

    from pytest_bindconform.host import fingerprint
    from pytest_bindconform.ports import PortAllocator

    host = dataclasses.replace(fingerprint(), excluded_ports=((33000, 33004),))
    ports = PortAllocator(host, range(33000, 33008))
    assert ports.take() == 33005
