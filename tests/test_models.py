"""The bind models: agreement with the case library, their rules, the derivation
tool, and (on Linux) the Linux model against this machine's real sockets."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import pytest

from pytest_bindconform import cases, measure, probe
from pytest_bindconform.explore import compare
from pytest_bindconform.host import fingerprint
from pytest_bindconform.model import NO_CLAIM, Cell, SocketSpec, Step
from pytest_bindconform.models import (
    UNKNOWN,
    ModelSocket,
    agreement,
    derive,
    for_os,
    predict,
    predict_delivery,
)
from pytest_bindconform.models.cells import predict_cell
from pytest_bindconform.ports import is_free, worker_slice

LIBRARY = Path(__file__).resolve().parent.parent / "cases"
TABLE1 = LIBRARY / "ms-so-exclusiveaddruse-table1.bind.yaml"
HOST = fingerprint()
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
# Below the cells' default range and outside the ephemeral ports; one slice per worker.
PORTS = itertools.cycle(worker_slice(18000, 19999, _WORKER, 4))
linux_only = pytest.mark.skipif(HOST.os != "linux", reason="measures the Linux model")
needs_ipv6 = pytest.mark.skipif(not HOST.ipv6, reason="this host has no IPv6 on loopback")
needs_127_0_0_2 = pytest.mark.skipif(
    len(HOST.addresses.get("inet", ())) < 2, reason="needs 127.0.0.2 on loopback"
)


# -- the case library ------------------------------------------------------------


def test_models_agree_with_every_claim_of_the_case_library() -> None:
    found = agreement.compare_library(LIBRARY)
    print("\n".join(found.summary()))  # the superseded tables' count is a finding
    assert found.checked, f"no expectation in {LIBRARY} was compared with a model"
    assert not found.disagreements, "\n".join(map(str, found.disagreements))
    kinds = {c.suite.oracles[c.expectation.oracle].kind for c in found.checked}
    assert kinds <= set(agreement.CHECKED_KINDS)


def test_superseded_windows_tables_are_counted_not_checked() -> None:
    found = agreement.compare_library(LIBRARY)
    table_a = [c for c in found.superseded if c.expectation.oracle == "ms-so-exclusiveaddruse-t1"]
    assert table_a, "table A's oracle should be compared, as a finding"
    assert not any(c.expectation.oracle in agreement.SUPERSEDED for c in found.checked)
    # Table A and table C do disagree (e.g. exclusive wildcard, then exclusive specific).
    assert any(not c.agrees for c in table_a)
    assert any("table A" in line for line in found.summary())


def test_a_wrong_expectation_is_reported(tmp_path: Path) -> None:
    text = TABLE1.read_text().replace(
        "- [INUSE,    INUSE,    INUSE,    INUSE]", "- [ok, INUSE, INUSE, INUSE]", 1
    )
    assert text != TABLE1.read_text(), "the table-1 file changed: update this test's edit"
    path = tmp_path / "t1.bind.yaml"
    path.write_text(text)
    found = agreement.compare([cases.load_suite(path)])
    assert found.disagreements
    assert all(
        c.expectation.outcome == "ok" and c.predicted == "INUSE" for c in found.disagreements
    )
    assert "expects ok" in str(found.disagreements[0])


# -- rules -------------------------------------------------------------------------


def sock(
    address: str,
    *options: str,
    kind: str = "stream",
    state: str = "unbound",
    v6only: bool | None = None,
    owner: str = "self",
    name: str = "",
) -> ModelSocket:
    family = "inet6" if ":" in address else "inet"
    return ModelSocket(family, kind, bool(v6only), frozenset(options), address, state, owner, name)


RA, RP, EX = "SO_REUSEADDR", "SO_REUSEPORT", "SO_EXCLUSIVEADDRUSE"


def test_predict_refuses_calls_it_has_no_model_for() -> None:
    with pytest.raises(ValueError, match="connect"):
        predict("linux", [], sock("0.0.0.0"), "connect")
    assert UNKNOWN in NO_CLAIM


@pytest.mark.parametrize("os_family", ["linux", "freebsd", "darwin", "windows"])
def test_rules_every_os_shares(os_family: str) -> None:
    bound = sock("127.0.0.1", state="bound")
    assert predict(os_family, [], bound, "bind") == "INVAL"
    assert (
        predict(os_family, [], sock("127.0.0.1", kind="dgram", state="bound"), "listen") == "NOTSUP"
    )
    assert predict(os_family, [], sock("127.0.0.1"), "bind") == "ok"
    unbound_listen = predict(os_family, [], sock("127.0.0.1"), "listen")
    assert unbound_listen == ("INVAL" if os_family == "windows" else "ok")


def test_windows_follows_tables_c_d_and_the_dual_stack_rule() -> None:
    w = for_os("windows")
    # C, row E/W, column D/S: ACCESS (table A says INUSE for the same pair).
    assert w([sock("0.0.0.0", EX, state="bound")], sock("127.0.0.1"), "bind", ()) == "ACCESS"
    # C, row D/W, column R/S: ok for the same user; D: ACCESS for another user.
    first = sock("0.0.0.0", state="bound")
    assert w([first], sock("127.0.0.1", RA), "bind", ()) == "ok"
    assert w([first], sock("127.0.0.1", RA, owner="other-user"), "bind", ()) == "ACCESS"
    # C: R after D on one address is ACCESS; R after R is ok.
    assert w([first], sock("0.0.0.0", RA), "bind", ()) == "ACCESS"
    assert w([sock("0.0.0.0", RA, state="bound")], sock("0.0.0.0", RA), "bind", ()) == "ok"
    # E with table C's cell on the IPv4 half: the page's worked example (IPv4 TCP on
    # loopback, then an exclusive dual-stack [::]) says WSAEACCES, Wine's tests_exclusive[6]
    # shows WSAEADDRINUSE on Windows: the model follows Windows.
    dual = sock("::", EX, v6only=False)
    assert w([sock("127.0.0.1", state="bound")], dual, "bind", ()) == "INUSE"
    assert w([sock("127.0.0.1", state="bound")], sock("::", v6only=False), "bind", ()) == "ok"
    assert w([sock("127.0.0.1", state="bound")], sock("::", EX, v6only=True), "bind", ()) == "ok"
    # ... and with the IPv4 socket listening, which neither source checks: no claim.
    assert w([sock("127.0.0.1", state="listening")], dual, "bind", ()) == UNKNOWN


def test_windows_claims_only_what_a_source_decides() -> None:
    """Defect: the model predicted 'ok' for a v4-mapped bind on an IPv6-only socket."""
    w = for_os("windows")
    assert w([], sock("::ffff:127.0.0.1", v6only=True), "bind", ()) == UNKNOWN
    # A dual-stack [::] first, then IPv4: Wine's assertions only (tests_exclusive[14], [11],
    # [10], [1]; test_ipv6only()), not table C's logic.
    dual = sock("::", v6only=False, state="bound")
    dual_ex = sock("::", EX, v6only=False, state="bound")
    assert w([dual], sock("0.0.0.0"), "bind", ()) == "ok"
    assert w([dual], sock("0.0.0.0", EX), "bind", ()) == "ok"
    assert w([dual_ex], sock("0.0.0.0"), "bind", ()) == "ACCESS"
    assert w([dual_ex], sock("127.0.0.1"), "bind", ()) == "ACCESS"
    assert w([dual_ex], sock("0.0.0.0", RA), "bind", ()) == "ACCESS"
    assert w([dual], sock("0.0.0.0", RA), "bind", ()) == UNKNOWN
    dual_udp = sock("::", kind="dgram", v6only=False, state="bound")
    assert w([dual_udp], sock("0.0.0.0", kind="dgram"), "bind", ()) == UNKNOWN
    assert w([sock("::", RA, v6only=False, state="bound")], sock("0.0.0.0"), "bind", ()) == UNKNOWN
    # v4-mapped: as its IPv4 address next to an AF_INET TCP socket (tests_exclusive[9],
    # [15]-[17]); next to anything else, or over UDP, nothing is known.
    mapped = sock("::ffff:127.0.0.1", v6only=False)
    assert w([sock("127.0.0.1", state="bound")], mapped, "bind", ()) == "INUSE"
    assert w([dual], mapped, "bind", ()) == UNKNOWN
    v4_udp = sock("127.0.0.1", kind="dgram", state="bound")
    assert w([v4_udp], sock("::ffff:127.0.0.1", kind="dgram", v6only=False), "bind", ()) == UNKNOWN
    # No table has connections or TIME_WAIT.
    assert w([sock("127.0.0.1", state="time-wait")], sock("127.0.0.1"), "bind", ()) == UNKNOWN
    # listen(): alone, or in the pairs Wine listens on; anything else is unknown.
    assert w([], sock("127.0.0.1", state="bound"), "listen", ()) == "ok"
    ra = sock("127.0.0.1", RA, state="bound")
    assert w([ra.at("listening")], ra, "listen", ()) == "ok"
    assert (
        w([sock("0.0.0.0", state="listening")], sock("127.0.0.1", state="bound"), "listen", ())
        == "ok"
    )
    assert (
        w([sock("0.0.0.0", EX, state="bound")], sock("127.0.0.1", EX, state="bound"), "listen", ())
        == UNKNOWN
    )


def test_bsd_other_user_rules_differ_across_families() -> None:
    """FreeBSD checks the user on the IPv4 half of a dual-stack bind with no address
    exemption (in6_pcbbind()); xnu exempts an AF_INET 0.0.0.0 there. The test runs only
    for an unprivileged new socket: a root 'self' socket skips it."""
    v4_any = sock("0.0.0.0", state="bound")
    stranger_dual = sock("::", v6only=False, owner="other-user")
    assert predict("freebsd", [v4_any], sock("::", v6only=False), "bind") == "ok"  # same user
    assert predict("freebsd", [v4_any], stranger_dual, "bind") == "INUSE"
    assert predict("darwin", [v4_any], stranger_dual, "bind") == "ok"
    # xnu, IPv4 half: another user's specific owner refuses unless it has SO_REUSEPORT
    v4_rp = sock("127.0.0.1", RP, state="bound")
    assert (
        predict("darwin", [v4_rp], sock("::", RP, v6only=False, owner="other-user"), "bind") == "ok"
    )
    v4_ra = sock("127.0.0.1", RA, state="bound")
    assert (
        predict("darwin", [v4_ra], sock("::", RA, v6only=False, owner="other-user"), "bind")
        == "INUSE"
    )
    # xnu, IPv6: two wildcards share across users only with SO_REUSEPORT on the old socket
    v6 = sock("::", v6only=True, state="bound")
    assert predict("darwin", [v6], sock("::", v6only=True, owner="other-user"), "bind") == "INUSE"
    # a privileged (root) new socket over nobody's: the same-user rules
    nobody = sock("127.0.0.1", owner="other-user", state="bound")
    for os_family in ("freebsd", "darwin"):
        assert predict(os_family, [nobody], sock("0.0.0.0", RA), "bind") == "ok"
    # FreeBSD 14 and 15 differ for two wildcards over an RPLB-only socket: no claim
    lb = sock("0.0.0.0", "SO_REUSEPORT_LB", state="bound")
    assert predict("freebsd", [lb], sock("0.0.0.0", owner="other-user"), "bind") == UNKNOWN


def test_agreement_counts_a_refuted_document_cell_as_an_erratum() -> None:
    found = agreement.compare_library(LIBRARY)
    errata = {(c.suite.id, c.cell.key, c.expectation.oracle) for c in found.errata}
    assert errata == {("ms-dual-stack", "v4.default.specific-then-dual.exclusive", "ms-dual-stack")}
    assert all(c.predicted == "INUSE" and c.expected == "ACCESS" for c in found.errata)
    assert any("refuted by a measurement" in line for line in found.summary())


def test_bsd_models_let_the_new_socket_decide_a_wildcard_specific_overlap() -> None:
    specific = sock("127.0.0.1", state="bound")
    for os_family in ("freebsd", "darwin"):
        assert predict(os_family, [specific], sock("0.0.0.0", RA), "bind") == "ok"
        assert predict(os_family, [specific], sock("0.0.0.0"), "bind") == "INUSE"
        # an exact duplicate needs RP on both; RA is not enough
        assert (
            predict(os_family, [sock("0.0.0.0", RA, state="bound")], sock("0.0.0.0", RA), "bind")
            == "INUSE"
        )
        assert (
            predict(os_family, [sock("0.0.0.0", RP, state="bound")], sock("0.0.0.0", RP), "bind")
            == "ok"
        )
        # [::] dual after 0.0.0.0 is fine, the reverse is not
        v4, dual = sock("0.0.0.0"), sock("::", v6only=False)
        assert predict(os_family, [v4.at("bound")], dual, "bind") == "ok"
        assert predict(os_family, [dual.at("bound")], v4, "bind") == "INUSE"
    lb = "SO_REUSEPORT_LB"
    assert (
        predict("freebsd", [sock("0.0.0.0", lb, state="bound")], sock("0.0.0.0", lb), "bind")
        == "ok"
    )
    assert (
        predict("freebsd", [sock("0.0.0.0", lb, state="bound")], sock("0.0.0.0", RP), "bind")
        == "INUSE"
    )
    # macOS: another user may share both wildcards with RP on both; FreeBSD: never
    other = sock("0.0.0.0", RP, owner="other-user")
    assert predict("darwin", [sock("0.0.0.0", RP, state="bound")], other, "bind") == "ok"
    assert predict("freebsd", [sock("0.0.0.0", RP, state="bound")], other, "bind") == "INUSE"


@pytest.mark.parametrize("os_family", ["freebsd", "darwin"])
@pytest.mark.parametrize("kind", ["dgram", "stream"])
def test_bsd_v4mapped_wildcard_is_exempt_over_an_inet6_wildcard(os_family: str, kind: str) -> None:
    # in_pcbbind(_setup)(): no EADDRINUSE when both addresses are wildcard and
    # both sockets are AF_INET6 (INP_IPV6PROTO / PF_INET6), whatever the options.
    dual = sock("::", kind=kind, v6only=False)
    mapped = sock("::ffff:0.0.0.0", kind=kind, v6only=False)
    for opts in ((), (RA,), (RP,)):
        new = sock("::ffff:0.0.0.0", *opts, kind=kind, v6only=False)
        assert predict(os_family, [dual.at("bound")], new, "bind") == "ok"  # (a), (b)
        assert predict(os_family, [mapped.at("bound")], new, "bind") == "ok"
    # (c) the reverse goes through in6_pcbbind(), which has no such exemption
    assert predict(os_family, [mapped.at("bound")], dual, "bind") == "INUSE"
    dual_ra = sock("::", RA, kind=kind, v6only=False)
    assert predict(os_family, [mapped.at("bound")], dual_ra, "bind") == "INUSE"
    # (d) a specific v4-mapped address is not exempt: the new socket's option decides
    specific = sock("::ffff:127.0.0.1", kind=kind, v6only=False)
    assert predict(os_family, [dual.at("bound")], specific, "bind") == "INUSE"
    with_ra = sock("::ffff:127.0.0.1", RA, kind=kind, v6only=False)
    assert predict(os_family, [dual.at("bound")], with_ra, "bind") == "ok"
    # an AF_INET wildcard is not exempt in either order
    v4 = sock("0.0.0.0", kind=kind)
    assert predict(os_family, [v4.at("bound")], mapped, "bind") == "INUSE"
    assert predict(os_family, [mapped.at("bound")], v4, "bind") == "INUSE"
    # another user: FreeBSD's uid test comes first; xnu's skips two wildcards
    other = sock("::ffff:0.0.0.0", kind=kind, v6only=False, owner="other-user")
    assert predict(os_family, [dual.at("bound")], other, "bind") == (
        "ok" if os_family == "darwin" else "INUSE"
    )


def test_linux_history_decides_the_tcp_fast_path() -> None:
    a = sock("0.0.0.0", RA, name="a").at("bound")
    b = sock("0.0.0.0", RA, RP, name="b").at("bound")
    c = sock("0.0.0.0", RP, name="c")
    history = [("bind", a), ("bind", b)]
    assert predict("linux", [a, b], c, "bind", history) == "ok"  # remembered by the bucket
    assert predict("linux", [a], c, "bind", [("bind", a)]) == "INUSE"  # pairwise
    # a listen in between forgets nothing of the RP socket, but a non-RP bind does
    d = sock("0.0.0.0", RA, name="d").at("bound")
    assert predict("linux", [a, b, d], c, "bind", [*history, ("bind", d)]) == "INUSE"


def test_delivery_names_the_receiver() -> None:
    a = sock("0.0.0.0", RA, kind="dgram", state="bound")
    b = sock("0.0.0.0", RA, kind="dgram", state="bound")
    assert predict_delivery("linux", {"a": a, "b": b}, "127.0.0.1") == "b"
    rp = {
        "a": sock("0.0.0.0", RP, kind="dgram", state="bound"),
        "b": sock("0.0.0.0", RP, kind="dgram", state="bound"),
    }
    assert predict_delivery("linux", rp, "127.0.0.1") == "both"
    specific = {"a": sock("127.0.0.1", RA, kind="dgram", state="bound"), "b": b}
    assert predict_delivery("linux", specific, "127.0.0.1") == "a"
    assert predict_delivery("windows", {"a": a, "b": b}, "127.0.0.1") == UNKNOWN  # UDP: '*'
    listeners = {
        "a": sock("0.0.0.0", RA, state="listening"),
        "b": sock("0.0.0.0", RA, state="listening"),
    }
    assert predict_delivery("windows", listeners, "127.0.0.1") == "a"  # Wine test_reuseaddr()
    assert predict_delivery("linux", {"a": a}, "::1") == "none"
    # Windows TCP: the specific listener (Wine); across families: no source
    spec_l = {"a": sock("0.0.0.0", state="listening"), "b": sock("127.0.0.1", state="listening")}
    assert predict_delivery("windows", spec_l, "127.0.0.1") == "b"
    mixed = {
        "a": sock("0.0.0.0", state="listening"),
        "b": sock("::", v6only=False, state="listening"),
    }
    assert predict_delivery("windows", mixed, "127.0.0.1") == UNKNOWN
    # FreeBSD / macOS: the chain order is not derived, so a tie or a choice is unknown
    for os_family in ("freebsd", "darwin"):
        assert predict_delivery(os_family, rp, "127.0.0.1") == UNKNOWN
        assert predict_delivery(os_family, specific, "127.0.0.1") == UNKNOWN
        assert predict_delivery(os_family, {"a": a}, "127.0.0.1") == "a"


# -- the derivation tool -----------------------------------------------------------

GRID = """\
format: 1
id: derive-test
title: derive test
references: []
profiles: [reuseport]
oracles:
  here: {kind: measured, source: test, applies: {os: linux}}
grid:
  rows:
    socket: second
    values:
      - {option: reuse, address: wildcard}
      - {options: [SO_EXCLUSIVEADDRUSE], address: wildcard}
  columns:
    socket: first
    values:
      - {option: default, address: specific}
      - {option: reuse, address: wildcard}
  expect:
    - oracle: here
      table:
        - [INUSE, ok]
        - [unknown, unknown]
"""


def derived(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert derive.main(list(argv)) == 0
    return capsys.readouterr().out


def test_derive_writes_blocks_that_load_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "grid.bind.yaml"
    path.write_text(GRID)
    out = derived(capsys, str(path), "--oracle", "freebsd", "--profile", "reuseport")
    assert out.startswith("    # derived by the freebsd model")
    # FreeBSD lets the new RP wildcard over an option-less specific socket (Linux
    # does not); SO_EXCLUSIVEADDRUSE does not exist there: unknown, not a guess.
    assert re.search(r"- \[ok, +ok\]", out)
    assert re.search(r"- \[unknown, +unknown\]", out)
    oracle = "  freebsd: {kind: derived, source: model, applies: {os: freebsd}}\n"
    block = "\n".join(line for line in out.splitlines() if not line.lstrip().startswith("#"))
    spliced = GRID.replace("oracles:\n", "oracles:\n" + oracle) + block + "\n"
    path.write_text(spliced)
    suite = cases.load_suite(path)
    for cell in suite.cells:
        exp = cell.expectation("freebsd")
        assert exp is not None
        assert exp.outcome == predict_cell("freebsd", cell, suite.profiles["reuseport"])


def test_derive_on_table1_reproduces_the_measured_linux_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    suite = cases.load_suite(TABLE1)
    out = derived(capsys, str(TABLE1), "--oracle", "linux", "--profile", "reuseport")
    committed = {
        c: e.outcome
        for c in suite.cells
        if c.profile == "reuseport" and (e := c.expectation("linux")) is not None
    }
    assert committed, "table 1 has no measured linux expectations any more"
    expected = measure.render(
        "linux", "reuseport", measure.blocks(measure.tables(suite, committed))
    )
    assert out.split("\n", 1)[1].rstrip("\n") == expected


def test_derive_rejects_an_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        derive.main([str(TABLE1), "--oracle", "solaris"])


# -- the Linux model against this machine's sockets ---------------------------------


def spec(name: str, text: str) -> SocketSpec:
    """'inet stream RA+RP wildcard' / 'inet6 dgram RP v4mapped-specific dual'."""
    family, kind, opts, address, *v6 = text.split()
    names = {"RA": RA, "RP": RP}
    options = tuple(sorted(names[o] for o in opts.split("+") if o != "-"))
    v6only = {"dual": False, "v6only": True}[v6[0]] if v6 else None
    return SocketSpec(name, family, kind, v6only, options, address)


def observe(sockets: list[str], steps: str) -> tuple[str, str | None]:
    """Run the sequence for real; the model must agree with every step and with
    who receives; returns the last step's outcome and the receiver."""
    specs = [spec(n, t) for n, t in zip("abcdef", sockets, strict=False)]
    plan_steps = [Step(*s.split()) for s in steps.split(", ")]
    cell = probe_cell(specs, plan_steps)
    port = next(p for p in PORTS if is_free(p, HOST))
    seen = probe.run(cell, probe.plan(cell, None, HOST), port, HOST)
    divergence = compare(HOST, specs, plan_steps, seen, for_os("linux"), set(), True)
    assert divergence is None, str(divergence)
    return seen.outcome, seen.delivery["receiver"] if seen.delivery else None


def probe_cell(specs: list[SocketSpec], steps: list[Step]) -> Cell:
    return Cell("t", "t", "t", "", None, tuple(specs), tuple(steps), len(steps) - 1, (), 0)


# Measured on Linux 6.18.44 (this project's host), also inside `unshare -rn`.
MEASURED = [
    # pairwise rows of posix-semantics.md
    (["inet stream RA wildcard", "inet stream RA wildcard"], "bind a, bind b", "ok"),
    (["inet stream RA wildcard", "inet stream RA specific"], "bind a, listen a, bind b", "INUSE"),
    (
        ["inet stream RA wildcard", "inet stream RA wildcard"],
        "bind a, bind b, listen a, listen b",
        "INUSE",
    ),
    (
        ["inet stream RP wildcard", "inet stream RP wildcard"],
        "bind a, bind b, listen a, listen b",
        "ok",
    ),
    (["inet stream - specific", "inet stream RA wildcard"], "bind a, bind b", "INUSE"),
    (["inet dgram RA wildcard", "inet dgram RA wildcard"], "bind a, bind b", "ok"),
    (["inet dgram - wildcard"], "bind a, listen a", "NOTSUP"),
    (["inet stream - specific"], "bind a, bind a", "INVAL"),
    # three sockets: the TCP bind bucket remembers the last RP socket it checked
    (
        ["inet stream RA wildcard", "inet stream RA+RP wildcard", "inet stream RP wildcard"],
        "bind a, bind b, bind c",
        "ok",
    ),
    (
        ["inet stream RA specific", "inet stream RA+RP specific", "inet stream RP wildcard"],
        "bind a, bind b, bind c",
        "INUSE",
    ),
    (
        ["inet stream RA wildcard", "inet stream RA+RP wildcard", "inet stream RP wildcard"],
        "bind a, bind b, bind c, listen c, listen a",
        "INUSE",
    ),
    # three sockets: UDP stops at the first compatible RP socket of its chain
    (
        ["inet dgram RA specific", "inet dgram RA+RP wildcard", "inet dgram RP wildcard"],
        "bind a, bind b, bind c",
        "ok",
    ),
    (
        ["inet dgram RA+RP wildcard", "inet dgram RA specific", "inet dgram RP wildcard"],
        "bind a, bind b, bind c",
        "INUSE",
    ),
    # delivery of unicast datagrams
    (["inet dgram RA specific", "inet dgram RA wildcard"], "bind a, bind b", "ok"),
    (
        ["inet dgram RP wildcard", "inet dgram RP wildcard", "inet dgram RP wildcard"],
        "bind a, bind b, bind c",
        "ok",
    ),
]
MEASURED_V6 = [
    (["inet stream - wildcard", "inet6 stream - wildcard v6only"], "bind a, bind b", "ok"),
    (["inet stream - wildcard", "inet6 stream - wildcard dual"], "bind a, bind b", "INUSE"),
    (["inet6 stream - wildcard dual", "inet stream - wildcard"], "bind a, bind b", "INUSE"),
    (
        ["inet stream - specific", "inet6 stream - v4mapped-specific dual"],
        "bind a, bind b",
        "INUSE",
    ),
    (["inet6 stream - v4mapped-specific v6only"], "bind a", "INVAL"),
    # an AF_INET6 RP socket goes to the tail of the UDP chain
    (
        [
            "inet6 dgram RA v4mapped-specific dual",
            "inet6 dgram RA+RP v4mapped-specific dual",
            "inet6 dgram RP v4mapped-specific dual",
        ],
        "bind a, bind b, bind c",
        "INUSE",
    ),
    (
        [
            "inet dgram RA specific",
            "inet6 dgram RA+RP wildcard dual",
            "inet6 dgram RP wildcard dual",
        ],
        "bind a, bind b, bind c",
        "INUSE",
    ),
    # a specific IPv6 address makes the socket IPv6-only before the bucket compares it
    (
        ["inet6 stream RA wildcard dual", "inet stream RA+RP wildcard", "inet6 stream RP specific"],
        "bind a, bind b, bind c",
        "INUSE",
    ),
]


@linux_only
@needs_127_0_0_2
@pytest.mark.parametrize(("sockets", "steps", "outcome"), MEASURED)
def test_linux_model_matches_real_sockets(sockets: list[str], steps: str, outcome: str) -> None:
    assert observe(sockets, steps)[0] == outcome


@linux_only
@needs_ipv6
@pytest.mark.parametrize(("sockets", "steps", "outcome"), MEASURED_V6)
def test_linux_model_matches_real_dual_stack_sockets(
    sockets: list[str], steps: str, outcome: str
) -> None:
    assert observe(sockets, steps)[0] == outcome


@linux_only
def test_linux_delivery_matches_real_traffic() -> None:
    assert observe(["inet dgram RA wildcard", "inet dgram RA wildcard"], "bind a, bind b")[1] == "b"
    assert observe(["inet dgram RA specific", "inet dgram RA wildcard"], "bind a, bind b")[1] == "a"
    assert observe(["inet dgram RP wildcard"] * 2, "bind a, bind b")[1] == "both"
    three = ["inet dgram RP wildcard"] * 3  # 16 datagrams reach all three but by chance
    assert observe(three, "bind a, bind b, bind c")[1] in ("shared", "both")


@linux_only
@needs_ipv6
def test_linux_delivery_of_dual_stack_reuseport_groups() -> None:
    # one group: a specific IPv6 address makes both sockets IPv6-only anyway
    pair = ["inet6 dgram RP specific dual", "inet6 dgram RP specific v6only"]
    assert observe(pair, "bind a, bind b")[1] == "both"
    # two groups on [::]: the first of the chain takes everything
    pair = ["inet6 dgram RP wildcard dual", "inet6 dgram RP wildcard v6only"]
    assert observe(pair, "bind a, bind b")[1] == "a"
    # IPv4 traffic: the AF_INET socket wins over the AF_INET6 one bound first
    pair = ["inet6 stream RP v4mapped-wildcard dual", "inet stream RP wildcard"]
    assert observe(pair, "bind a, bind b, listen a, listen b")[1] == "b"


def test_derive_writes_expect_lines_for_individual_cases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "linux-port-history.bind.yaml"
    found = [
        p for p in (LIBRARY / name, LIBRARY.parent / "reports/counterexamples" / name) if p.exists()
    ]
    if not found:
        pytest.skip(f"{name} is neither in cases/ nor in reports/counterexamples/")
    source = found[0]
    out = derived(capsys, str(source), "--oracle", "linux")
    suite = cases.load_suite(source)
    lines = [line for line in out.splitlines() if "expect:" in line]
    assert len(lines) == len({c.key for c in suite.cells})
    for cell in suite.cells:
        measured = cell.expectation("linux")
        assert measured is not None
        assert f"  {cell.key}:  expect: {{linux: {measured.outcome}}}" in lines
