"""A new user's first session: case files anywhere, a gate for another OS, the library
shipped in the wheel, the terminal, --junitxml, labels, the command line's name.

Each test is one stumble of the issue on the matrix a person reads; plugin runs go
through pytester, with and without xdist.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_gate import ARGS, ELSEWHERE, OS, SUITE

from pytest_bindconform.__main__ import main

REPO = Path(__file__).resolve().parents[1]

XDIST = [(), ("-n", "2")]


@pytest.fixture(params=XDIST, ids=["no-xdist", "xdist"])
def xdist(request: pytest.FixtureRequest) -> tuple[str, ...]:
    return tuple(request.param)


def test_case_files_named_on_the_command_line_are_collected_wherever_they_are(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    pytester.makeini("[pytest]\nbindconform_cases = cases\n")
    (pytester.path / "cases").mkdir()
    (pytester.path / "mycases").mkdir()
    (pytester.path / "cases" / "lib.bind.yaml").write_text(SUITE.replace("id: gate", "id: lib"))
    (pytester.path / "mycases" / "mine.bind.yaml").write_text(SUITE)
    for args in (["mycases"], ["mycases/mine.bind.yaml"]):
        result = pytester.runpytest(*ARGS, *xdist, *args)
        result.assert_outcomes(passed=1)
    # the rootdir (no argument) still means the configured roots only
    result = pytester.runpytest(*ARGS, *xdist, "--collect-only", "-q")
    assert "cases/lib.bind.yaml::plain-twice" in result.stdout.str()
    assert "mycases" not in result.stdout.str()


def test_a_gate_for_another_os_is_a_usage_error_naming_the_oracles_that_apply(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    pytester.makefile(".bind.yaml", gate=SUITE)
    result = pytester.runpytest(*ARGS, *xdist, "--bindconform-gate", f"{OS}=elsewhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*--bindconform-gate {OS}=elsewhere: oracle 'elsewhere' is for {ELSEWHERE}, not this*"
            "Oracles of the collected suites that apply here: *silent, wrong*"
        ]
    )


EXCLUSIVE_ONLY = """\
  - id: exclusive-only
    sockets: {a: {options: [SO_EXCLUSIVEADDRUSE], address: specific}}
    steps: [bind a]
    expect: {elsewhere: ok}
"""


@pytest.mark.skipif(OS == "windows", reason="needs an OS without SO_EXCLUSIVEADDRUSE")
def test_terminal_says_one_thing_once_and_more_with_v(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    pytester.makefile(".bind.yaml", gate=SUITE + EXCLUSIVE_ONLY)
    pytester.makefile(".bind.yaml", bad=SUITE.replace("kind: measured", "kind: mesured"))
    result = pytester.runpytest(
        *ARGS, *xdist, "-rA", "-v", "--bindconform-gate", f"{OS}=wrong",
        "--bindconform-json", "r.json",
    )  # fmt: skip
    out = result.stdout.str()
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    cell = next(line for line in failed if "plain-twice" in line)
    assert cell.count("plain-twice") == 1 and " - observed INUSE, gate oracle 'wrong'" in cell
    bad = next(line for line in failed if "case-file-error" in line)
    assert " - bad.bind.yaml:7:11: oracles.linux.kin" in bad
    # 1 skip; the gate expects nothing of it, and says so instead of disagreeing silently
    result.stdout.fnmatch_lines(
        [
            "3 cells: 1 fail, 1 skip, 1 error (gate wrong)",
            "  wrong (gate): 0 agree, 1 disagree, 0 no claim, 0 not run"
            " (+1 skipped cells it expects nothing of)",
            f"reports: {(pytester.path / 'r.json').as_uri()}",
            "not run, by reason:",
            "      1 *SO_EXCLUSIVEADDRUSE*",
        ]
    )


def test_terminal_reports_what_the_exploration_tried(pytester: pytest.Pytester) -> None:
    pytester.makefile(".bind.yaml", gate=SUITE)
    result = pytester.runpytest(*ARGS, "--bindconform-explore=10", "--bindconform-explore-seed=1")
    result.stdout.fnmatch_lines(
        ["bindconform explore: * socket sequences in * s (*seed 1): * divergence(s)*"]
    )


def test_junitxml_carries_each_cells_facts_and_the_hosts(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    import xml.etree.ElementTree as ET

    pytester.makefile(".bind.yaml", gate=SUITE)
    pytester.runpytest(*ARGS, *xdist, "--junitxml", "j.xml", "--bindconform-gate", f"{OS}=wrong")
    root = ET.parse(pytester.path / "j.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    host = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert str(host["bindconform_os"]).startswith(OS) and host["bindconform_gate"] == "wrong"
    assert host["bindconform_kernel"] and host["bindconform_python"]
    if OS == "linux":
        assert host["bindconform_sysctl_net.ipv6.bindv6only"] in ("0", "1")
    (case,) = suite.findall("testcase")
    cell = {p.get("name"): p.get("value") for p in case.findall("properties/property")}
    assert cell["bindconform_status"] == "fail" and cell["bindconform_outcome"] == "INUSE"
    assert cell["bindconform_gate"] == "wrong" and cell["bindconform_failed_call"] == "bind b"
    assert "wrong=disagree" in str(cell["bindconform_verdicts"]).split()
    assert "98" in str(cell["bindconform_errno"]) or OS != "linux"


def test_labels_say_the_role_and_what_it_became_everywhere(tmp_path: Path) -> None:
    from test_report_files import run_report

    from pytest_bindconform.report import html
    from pytest_bindconform.report.merge import resolves

    doc = run_report(tmp_path)
    became: dict[str, dict[str, str]] = {}
    for r in doc["results"]:
        resolves(became, r)
    ((profile, roles),) = became.items()  # one grid: one profile
    page = html.render(doc)
    for role, options in roles.items():
        assert f"{role} ({options})" in page, (role, options)
    code = main(["table", "ms-so-exclusiveaddruse-t1", "--cases", str(REPO / "cases")])
    assert code == 0
    rows = main_json(["table", "linux", "--suite", "ms-so-exclusiveaddruse-table1", "--format",
                      "json", "--cases", str(REPO / "cases")])  # fmt: skip
    reuse = next(r for r in rows if r["first_roles"] == "reuse" and r["profile"] == "reuseport")
    assert reuse["first_option"] == "SO_REUSEADDR"  # the page's name
    assert reuse["first_resolved"] == "SO_REUSEPORT"  # what Linux sets under that profile


def main_json(argv: list[str]) -> list[dict[str, Any]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return list(json.loads(out.getvalue()))


def test_the_command_line_is_called_what_the_user_typed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv0, prog in (("/venv/bin/bindconform", "bindconform"), ("x/__main__.py", "python -m")):
        monkeypatch.setattr(sys, "argv", [argv0, "--help"])
        with pytest.raises(SystemExit):
            main(["--help"])
        out = capsys.readouterr().out
        assert out.startswith(f"usage: {prog}") and "{measure,table,merge}" in out


def test_plugin_off_in_this_repository_warns_about_no_ini_key() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:bindconform", "-p", "no:cacheprovider",
         "-W", "error::pytest.PytestConfigWarning", "--collect-only", "-q", "tests/test_ops.py"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Unknown config option" not in done.stdout + done.stderr
