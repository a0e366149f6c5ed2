"""Verdicts: only the gate oracle decides; the others are data; an unknown is a skip."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from pytest_bindconform import probe
from pytest_bindconform.cases import load_suite
from pytest_bindconform.host import fingerprint, os_family
from pytest_bindconform.oracles import DEFAULT_GATES

ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
OS = os_family()
GATE = DEFAULT_GATES[OS]  # the oracle that gates this OS by default
ELSEWHERE = "linux" if OS == "windows" else "windows"
HOST = fingerprint()

# Two plain binds of one specific address: INUSE on every OS. 'wrong' says otherwise.
SUITE = f"""\
format: 1
id: gate
title: gate selection
references: []
oracles:
  {GATE}:
    kind: measured
    source: measured here
    applies: {{os: {OS}}}
  wrong:
    kind: derived
    source: a deliberately wrong derivation
    applies: {{os: {OS}}}
  silent:
    kind: derived
    source: says nothing
    applies: {{os: {OS}}}
  elsewhere:
    kind: document
    source: another OS's table
    applies: {{os: {ELSEWHERE}}}
cases:
  - id: plain-twice
    sockets: {{a: {{address: specific}}, b: {{address: specific}}}}
    steps: [bind a, bind b]
    expect: {{{GATE}: INUSE, wrong: ok, silent: unknown, elsewhere: INUSE}}
"""


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.HookRecorder, dict[str, Any]]:
    """Run the suite in-process; return the recorder and the cell's record from its report."""
    pytester.makefile(".bind.yaml", gate=SUITE)
    reprec = pytester.inline_run(*ARGS, *args)
    (report,) = [
        r
        for r in reprec.getreports("pytest_runtest_logreport")
        if r.when == "call" and hasattr(r, "bindconform")
    ]
    return reprec, {
        **report.bindconform,
        "longrepr": report.longreprtext,
        "outcome": report.outcome,
    }


def test_default_gate_passes_and_other_oracles_are_data(pytester: pytest.Pytester) -> None:
    reprec, record = run(pytester)
    reprec.assertoutcome(passed=1)
    assert record["observed"]["outcome"] == "INUSE"
    assert record["gate"] == GATE
    assert record["status"] == "pass"
    # every oracle for this host compared; the one for another OS is not
    assert record["verdicts"] == {GATE: "agree", "wrong": "disagree", "silent": "no-claim"}
    assert set(record["expected"]) == {GATE, "wrong", "silent", "elsewhere"}


def test_gate_disagreement_fails_showing_steps_and_expectations(pytester: pytest.Pytester) -> None:
    reprec, record = run(pytester, "--bindconform-gate", f"{OS}=wrong")
    reprec.assertoutcome(failed=1)
    assert (record["gate"], record["status"]) == ("wrong", "fail")
    text = record["longrepr"]
    inuse = "WSAEADDRINUSE" if OS == "windows" else "EADDRINUSE"
    for needed in (
        "plain-twice",
        "observed INUSE at step 'bind b'",
        "steps:",
        inuse,
        "expectations:",
        "derived: a deliberately wrong derivation",
        "observed INUSE, gate oracle 'wrong' expects ok",
    ):
        assert needed in text, f"{needed!r} missing from:\n{text}"
    gate_line = next(line for line in text.splitlines() if "<- gate" in line)
    assert "wrong" in gate_line and "disagree" in gate_line
    assert "Traceback" not in text


def test_ini_gate_is_used_and_the_option_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini(f"[pytest]\nbindconform_gate =\n    {OS}=wrong\n")
    reprec, record = run(pytester)
    reprec.assertoutcome(failed=1)
    assert record["gate"] == "wrong"
    reprec, record = run(pytester, "--bindconform-gate", f"{OS}={GATE}")
    reprec.assertoutcome(passed=1)
    assert record["gate"] == GATE


def test_gate_for_another_os_leaves_this_one_alone(pytester: pytest.Pytester) -> None:
    reprec, record = run(pytester, "--bindconform-gate", f"{ELSEWHERE}=wrong")
    reprec.assertoutcome(passed=1)
    assert record["gate"] == GATE


def test_header_names_the_gate(pytester: pytest.Pytester) -> None:
    pytester.makefile(".bind.yaml", gate=SUITE)
    result = pytester.runpytest(*ARGS, "--bindconform-gate", f"{OS}=wrong", "--collect-only")
    result.stdout.fnmatch_lines([f"bindconform: *gate {OS}=wrong"])


@pytest.mark.parametrize("bad", [f"{OS}", "plan9=linux", f"{OS}="])
def test_malformed_gate_is_a_usage_error(pytester: pytest.Pytester, bad: str) -> None:
    pytester.makefile(".bind.yaml", gate=SUITE)
    result = pytester.runpytest(*ARGS, "--bindconform-gate", bad)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*bad gate {bad!r}: expected OS=ORACLE*windows, linux*"])
    assert "Traceback" not in result.stderr.str()


def test_a_gate_without_a_claim_is_answered_not_gated(pytester: pytest.Pytester) -> None:
    """Issue 10: an open question runs and says what happened; its status stays 'ungated'
    (the report never counts it as a pass of the gate)."""
    reprec, record = run(pytester, "--bindconform-gate", f"{OS}=silent", "-rs")
    reprec.assertoutcome(passed=1)
    assert record["status"] == "ungated" and record["observed"]["outcome"]
    assert "'silent' makes no claim" in record["reason"]
    assert f"{GATE}: agree" in record["reason"] and "wrong: disagree" in record["reason"]


def test_a_gate_no_suite_defines_is_a_skip_naming_it(pytester: pytest.Pytester) -> None:
    reprec, record = run(pytester, "--bindconform-gate", f"{OS}=lnux")
    reprec.assertoutcome(skipped=1)
    assert "'lnux' has no expectation" in record["reason"]


def test_a_mistyped_gate_is_called_out_with_a_close_match(pytester: pytest.Pytester) -> None:
    pytester.makefile(".bind.yaml", gate=SUITE)
    typo = GATE + "z"
    result = pytester.runpytest(*ARGS, "--bindconform-gate", f"{OS}={typo}")
    result.stdout.fnmatch_lines(
        [f"*warning: gate oracle '{typo}' appears in no collected suite*did you mean '{GATE}'?*"]
    )


# -- what this host lacks: skipped, saying how to enable it ------------------------------


def skip_reason(pytester: pytest.Pytester, sockets: str, *args: str) -> str:
    pytester.makefile(
        ".bind.yaml",
        needs=SUITE.replace("{a: {address: specific}, b: {address: specific}}", sockets),
    )
    reprec = pytester.inline_run(*ARGS, *args)
    reprec.assertoutcome(skipped=1)
    (report,) = reprec.getreports("pytest_runtest_logreport")[1:2]
    assert report.skipped
    reason: str = report.longrepr[2]  # type: ignore[index]
    return reason


def test_missing_option_skip_names_the_option(pytester: pytest.Pytester) -> None:
    if OS == "windows":
        pytest.skip("SO_EXCLUSIVEADDRUSE exists on Windows")
    reason = skip_reason(
        pytester, "{a: {options: [SO_EXCLUSIVEADDRUSE]}, b: {options: [SO_EXCLUSIVEADDRUSE]}}"
    )
    assert "SO_EXCLUSIVEADDRUSE does not exist on " + OS in reason
    assert "Windows" in reason


def test_missing_second_ipv6_address_skip_says_how_to_enable(pytester: pytest.Pytester) -> None:
    if HOST.specific("inet6", 1) is not None or not HOST.ipv6:
        pytest.skip("this host has a second IPv6 address (or no IPv6 at all)")
    reason = skip_reason(
        pytester, "{a: {family: inet6, address: specific}, b: {family: inet6, address: specific2}}"
    )
    assert "second IPv6 address" in reason
    if OS == "linux":
        assert "--bindconform-isolate=netns" in reason
    assert "2001:db8::" in reason


@pytest.mark.parametrize(
    ("lacks", "sockets", "words"),
    [
        (
            {"ipv6": False},
            "{a: {family: inet6, address: specific}, b: {family: inet6, address: specific}}",
            ["needs IPv6", "enable IPv6 on loopback"],
        ),
        (
            {"addresses": {"inet": ("127.0.0.1",), "inet6": ("::1",)}},
            "{a: {address: specific}, b: {address: specific2}}",
            ["a second IPv4 address (127.0.0.2)", "add it with: "],
        ),
    ],
)
def test_a_host_without_it_plans_a_skip_saying_how_to_enable(
    tmp_path: Path, lacks: dict[str, Any], sockets: str, words: list[str]
) -> None:
    """Hosts this machine is not: the same planning, on their fingerprint."""
    path = tmp_path / "needs.bind.yaml"
    path.write_text(SUITE.replace("{a: {address: specific}, b: {address: specific}}", sockets))
    (cell,) = load_suite(path).cells
    with pytest.raises(probe.Unrunnable) as info:
        probe.plan(cell, None, dataclasses.replace(HOST, **lacks))
    for word in words:
        assert word in str(info.value)


def test_missing_literal_address_skip_names_that_address(pytester: pytest.Pytester) -> None:
    reason = skip_reason(pytester, "{a: {address: 192.0.2.7}, b: {address: 192.0.2.7}}")
    assert "192.0.2.7" in reason
    assert "127.0.0.2" not in reason, reason


@pytest.mark.skipif(OS != "linux", reason="network namespaces are Linux only")
def test_following_the_netns_advice_runs_the_cell(pytester: pytest.Pytester) -> None:
    """The skip reason's advice must work: in the private namespace the cell runs."""
    pytester.makefile(
        ".bind.yaml",
        needs=SUITE.replace(
            "{a: {address: specific}, b: {address: specific}}",
            "{a: {family: inet6, address: specific}, b: {family: inet6, address: specific2}}",
        ).replace(f"{GATE}: INUSE", f"{GATE}: ok"),
    )
    result = pytester.runpytest_subprocess(*ARGS, "--bindconform-isolate=netns", "-rs")
    if "netns unavailable" in result.stdout.str():
        pytest.skip("network namespaces are not permitted here")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["bindconform: *isolation netns*"])


# -- host settings an oracle assumes ------------------------------------------------------


@pytest.mark.skipif(OS != "linux", reason="net.ipv6.bindv6only is a Linux setting")
def test_a_gate_assuming_other_host_settings_skips_naming_the_setting(
    pytester: pytest.Pytester,
) -> None:
    here = HOST.sysctl["net.ipv6.bindv6only"]
    other = "1" if here == "0" else "0"
    suite = SUITE.replace(
        f"    applies: {{os: {OS}}}\n  wrong:",
        f'    applies: {{os: {OS}, sysctl: {{net.ipv6.bindv6only: "{other}"}}}}\n  wrong:',
        1,
    )
    assert suite != SUITE
    pytester.makefile(".bind.yaml", gate=suite)
    reprec = pytester.inline_run(*ARGS, "-rs")
    reprec.assertoutcome(skipped=1)
    (report,) = [r for r in reprec.getreports("pytest_runtest_logreport") if r.when == "call"]
    record = report.bindconform
    assert record["status"] == "skip"
    assert f"net.ipv6.bindv6only={here} (expected {other})" in record["reason"]
    assert "--bindconform-isolate=netns" in record["reason"]
    assert GATE not in record["verdicts"]  # an oracle that does not apply gives no verdict
    assert record["observed"]["outcome"] == "INUSE"  # it ran: the observation is kept


# -- who receives the traffic --------------------------------------------------------------

DELIVERY = """\
format: 1
id: delivery
title: delivery
references: []
oracles:
  linux: {kind: measured, source: here, applies: {os: linux}}
cases:
  - id: last-bound-gets-unicast
    variants: {type: [dgram]}
    sockets:
      a: {options: [SO_REUSEADDR], address: specific}
      b: {options: [SO_REUSEADDR], address: specific}
    steps: [bind a, bind b]
    expect: {linux: ok}
    deliver: {linux: RECEIVER}
"""


@pytest.mark.skipif(OS != "linux", reason="Linux's UDP SO_REUSEADDR delivery rule")
@pytest.mark.parametrize(("receiver", "outcome"), [("b", "passed"), ("a", "failed")])
def test_a_receiver_expectation_is_gated_and_a_miss_is_probed_twice(
    pytester: pytest.Pytester, receiver: str, outcome: str
) -> None:
    pytester.makefile(".bind.yaml", delivery=DELIVERY.replace("RECEIVER", receiver))
    reprec = pytester.inline_run(*ARGS)
    (report,) = [r for r in reprec.getreports("pytest_runtest_logreport") if r.when == "call"]
    assert report.outcome == outcome
    observed = report.bindconform["observed"]
    assert observed["delivery"]["receiver"] == "b"  # unicast goes to the last bound socket
    if outcome == "failed":
        # a disagreement about the receiver alone is re-observed once; both runs are kept
        assert [d["receiver"] for d in observed["delivery_reruns"]] == ["b"]
        assert "received by b, gate oracle 'linux' expects ok, received by a" in report.longreprtext
    else:
        assert "delivery_reruns" not in observed
