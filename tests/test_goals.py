"""Goal suites: the format (loader errors with file:line:column), needs judged per
cell, open questions answered in every output, and measure naming who received."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_bindconform import cases, goals
from pytest_bindconform.host import os_family
from pytest_bindconform.yamlsrc import CaseFileError

ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
OS = os_family()

GOAL = """\
format: 1
id: my-goal
title: "my goal"
references: []
oracles: {}
goal:
  id: exclusive
  transport: tcp
  title: "nobody shares my port"
  candidates: {options: [none, SO_REUSEPORT]}
  rivals: [none, SO_REUSEPORT]
cases:
  - id: rival-here
    variants: {family: [inet]}
    sockets:
      mine: {candidate: true, address: specific}
      rival: {rival: true, address: specific}
    steps: [bind mine, listen mine, bind rival, listen rival]
    test: listen rival
    need: {outcome: fail, else_silent: [rival]}
"""


def load(tmp_path: Path, text: str) -> cases.Suite:  # type: ignore[name-defined]
    path = tmp_path / "g.bind.yaml"
    path.write_text(text)
    return cases.load_suite(path, display="g.bind.yaml")


def errors(tmp_path: Path, text: str) -> str:
    with pytest.raises(CaseFileError) as info:
        load(tmp_path, text)
    return str(info.value)


def test_cells_are_candidates_times_rivals_times_variants(tmp_path: Path) -> None:
    suite = load(tmp_path, GOAL)
    names = [c.name for c in suite.cells]
    assert names == [
        "rival-here[none-vs-none-tcp4]",
        "rival-here[none-vs-SO_REUSEPORT-tcp4]",
        "rival-here[SO_REUSEPORT-vs-none-tcp4]",
        "rival-here[SO_REUSEPORT-vs-SO_REUSEPORT-tcp4]",
    ]
    cell = suite.cells[3]
    assert cell.socket("mine").options == ("SO_REUSEPORT",)
    assert cell.socket("rival").options == ("SO_REUSEPORT",)
    found = goals.of(suite, cell)
    assert found is not None and found.goal == "exclusive" and found.rival == "SO_REUSEPORT"


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        (
            "    need: {outcome: fail, else_silent: [rival]}\n",
            "",
            "rival-here': a goal suite's case needs 'need:'",
        ),
        (
            "else_silent: [rival]",
            "else_silent: [rivl]",
            "need.else_silent: 'rivl' is not a socket of this case; "
            "valid choices: mine, rival; did you mean 'rival'?",
        ),
        ("  rivals: [none, SO_REUSEPORT]\n", "", "rival sockets need the goal's 'rivals:' list"),
        (
            "{candidate: true, address: specific}",
            "{candidate: true, options: [SO_REUSEADDR], address: specific}",
            "socket 'mine' takes its options from the candidate; drop 'options'",
        ),
        (
            "{candidate: true, address: specific}",
            "{address: specific}",
            "a situation needs 'my' socket: mark one 'candidate: true'",
        ),
        (
            "transport: tcp",
            "transport: sctp",
            "goal.transport: 'sctp' is not allowed; valid choices: tcp, udp",
        ),
        ("rivals: [none, SO_REUSEPORT]", "rivals: [none, SO_REUSEPROT]", "goal.rivals[1]"),
        (
            "steps: [bind mine,",
            "steps: [kill mine, bind mine,",
            "kill needs a socket held by another process",
        ),
        (
            "outcome: fail, else_silent",
            "outcome: ok, else_silent",
            "else_silent goes with outcome: fail",
        ),
        (
            "variants: {family: [inet]}",
            "variants: {type: [dgram]}",
            "the goal's transport (tcp) decides the socket type",
        ),
    ],
)
def test_goal_mistakes_are_reported_with_position(
    tmp_path: Path, old: str, new: str, said: str
) -> None:
    assert old in GOAL
    text = errors(tmp_path, GOAL.replace(old, new))
    assert said in text, text
    assert text.startswith("g.bind.yaml:") and text.split(":")[1].isdigit(), text


def test_goal_keys_outside_a_goal_suite_are_errors(tmp_path: Path) -> None:
    plain = GOAL.replace(
        "oracles: {}", "oracles:\n  x: {kind: measured, source: here, applies: {os: linux}}"
    )
    plain = plain.split("goal:\n")[0] + "cases:" + plain.split("cases:")[1]
    text = errors(tmp_path, plain)
    assert "'need' belongs to goal suites: add a suite-level 'goal:' block" in text
    assert "'candidate' belongs to goal suites" in text
    assert "required key 'expect' is missing" in text
    assert "g.bind.yaml:15:11: 'need' belongs" in text  # the very key


def test_an_ordinary_suite_still_needs_an_oracle(tmp_path: Path) -> None:
    plain = GOAL.split("goal:\n")[0].replace("oracles: {}", "oracles: {}\ncases: []")
    assert "oracles: must not be empty" in errors(tmp_path, plain)


def observed(outcome: str, received: dict[str, int] | None, failed: str = "") -> dict:  # type: ignore[type-arg]
    steps = [{"socket": "mine", "call": "bind", "outcome": "ok", "errno": 0, "error": ""}]
    if failed:
        steps.append(
            {
                "socket": "rival",
                "call": "bind",
                "outcome": failed,
                "errno": 98,
                "error": "EADDRINUSE",
            }
        )
    delivery = None
    if received is not None:
        delivery = {
            "target": "127.0.0.1",
            "sent": sum(received.values()),
            "received": received,
            "receiver": "both",
        }
    return {"outcome": outcome, "steps": steps, "delivery": delivery}


def test_needs_are_judged_from_outcome_and_delivery(tmp_path: Path) -> None:
    suite = load(tmp_path, GOAL)
    situation = suite.goal.situations[0]
    met, why = goals.judge_need(situation, observed("INUSE", None, "INUSE"))
    assert met and "failed as needed" in why
    met, why = goals.judge_need(situation, observed("ok", {"mine": 16, "rival": 0}))
    assert met and "rival received none of 16" in why
    met, why = goals.judge_need(situation, observed("ok", {"mine": 9, "rival": 7}))
    assert not met and "rival received 7 of 16" in why
    share = goals.Situation(
        **{**situation.__dict__, "need": goals.Need("ok", receive=("mine", "rival"))}
    )
    assert goals.judge_need(share, observed("ok", {"mine": 9, "rival": 7}))[0] is True
    assert goals.judge_need(share, observed("ok", {"mine": 16, "rival": 0}))[0] is False
    every = goals.Situation(
        **{**situation.__dict__, "need": goals.Need("ok", receive_all=("mine",))}
    )
    assert goals.judge_need(every, observed("ok", {"mine": 8, "rival": 8}))[0] is False
    assert goals.judge_need(every, observed("ok", {"mine": 16, "rival": 0}))[0] is True


def test_fairness_is_jains_index() -> None:
    assert goals.fairness([40, 40, 40]) == 1.0
    assert goals.fairness([120, 0, 0]) == pytest.approx(1 / 3, abs=0.001)
    assert goals.fairness([0, 0]) is None


OPEN = f"""\
format: 1
id: open
title: "an open question"
references: []
oracles:
  here: {{kind: measured, source: "nobody knows", applies: {{os: {OS}}}}}
cases:
  - id: what-happens
    variants: {{type: [dgram], family: [inet]}}
    sockets:
      a: {{options: [SO_REUSEADDR], address: specific}}
      b: {{options: [SO_REUSEADDR], address: specific}}
    steps: [bind a, bind b]
    expect: {{here: unknown}}
"""


@pytest.mark.skipif(OS == "windows", reason="SO_REUSEADDR sharing differs; the text is the same")
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_open_questions_run_and_say_what_happened(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    pytester.makefile(".bind.yaml", open=OPEN)
    md, page = pytester.path / "r.md", pytester.path / "r.html"
    result = pytester.runpytest_subprocess(
        *ARGS, *workers, "-rA", "-v", "--bindconform-md", str(md), "--bindconform-html", str(page)
    )
    assert result.ret == 0
    text = result.stdout.str()
    assert "OBSERVED ok" in text  # -v status word
    assert (
        "observed ok at 'bind b'; every call succeeded; 16 sent to 127.0.0.1; received a:" in text
    )
    assert "PASSES" in text  # -rA shows the answer section
    assert "## Open questions answered (1)" in md.read_text()
    assert "who received the traffic" in md.read_text()
    assert "Open questions answered (1)" in page.read_text()


def test_measure_prints_who_received_the_traffic(tmp_path: Path) -> None:
    path = tmp_path / "open.bind.yaml"
    path.write_text(OPEN)
    out = subprocess.run(
        [sys.executable, "-m", "pytest_bindconform", "measure", str(path), "--oracle", "here"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "# who received the traffic:" in out
    assert "# what-happens[udp4]: received by " in out and "(16 sent to 127.0.0.1; a: " in out


def test_facts_appear_next_to_their_suite(pytester: pytest.Pytester) -> None:
    text = OPEN.replace(
        "references: []",
        'references: []\nfacts:\n  - {fact: "UDP <shares> freely", source: "a test"}',
    )
    pytester.makefile(".bind.yaml", open=text)
    md, page = pytester.path / "r.md", pytester.path / "r.html"
    pytester.runpytest_subprocess(
        *ARGS, "--bindconform-md", str(md), "--bindconform-html", str(page)
    )
    assert "UDP &lt;shares&gt; freely — _a test_" in md.read_text()
    html = page.read_text()
    assert "UDP &lt;shares&gt; freely" in html and "<shares>" not in html
    suite_section = html.split('id="suite-open"')[1]
    assert "UDP &lt;shares&gt; freely" in suite_section.split("</section>")[0]
    assert json.dumps  # (reports are checked against the schema in test_recommend)
