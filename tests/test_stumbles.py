"""A new user's first session: case files anywhere, a gate for another OS, the library
shipped in the wheel, the terminal, --junitxml, labels, the command line's name.

Each test is one stumble of the issue on the matrix a person reads; plugin runs go
through pytester, with and without xdist.
"""

from __future__ import annotations

import pytest
from test_gate import ARGS, ELSEWHERE, OS, SUITE

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
