"""A user's own server as a goal candidate (--bindconform-server), gated by
bindconform_require. Real sockets through pytester, with and without xdist; the goal
suite is the shipped cases/goal-exclusive-tcp.bind.yaml."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-k", "server")
LINUX = sys.platform.startswith("linux")

FACTORIES = """
import socket

FAMILIES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6}
TYPES = {"stream": socket.SOCK_STREAM, "dgram": socket.SOCK_DGRAM}


def _make(option, family, type, address, port):
    s = socket.socket(FAMILIES[family], TYPES[type])
    s.setsockopt(socket.SOL_SOCKET, option, 1)
    s.bind((address, port))
    if type == "stream":
        s.listen(8)
    return s


def reuseport(family, type, address, port):
    return _make(socket.SO_REUSEPORT, family, type, address, port)


def reuseaddr(family, type, address, port):
    return _make(socket.SO_REUSEADDR, family, type, address, port)


def broken(family, type, address, port):
    raise RuntimeError("config file missing")


def not_a_socket(family, type, address, port):
    return 42


def two_args(family, port):
    return None
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    (pytester.path / "cases").mkdir()
    text = (ROOT / "cases" / "goal-exclusive-tcp.bind.yaml").read_text()
    (pytester.path / "cases" / "goal-exclusive-tcp.bind.yaml").write_text(text)
    pytester.makepyfile(myservers=FACTORIES)
    pytester.syspathinsert()
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))  # xdist workers import it too
    return pytester


def rows(path: Path, name: str) -> dict[str, dict[str, object]]:
    report = json.loads(path.read_text())
    goals = report["recommendations"]["goals"]
    return {r["goal"]: r for r in goals if r["candidate"] == name}


@pytest.mark.skipif(not LINUX, reason="the expected verdicts are Linux's")
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_reuseport_server_misses_exclusive_reuseaddr_meets_it(
    project: pytest.Pytester, workers: list[str]
) -> None:
    out = project.path / "r.json"
    result = project.runpytest_subprocess(
        *ARGS,
        *workers,
        "cases",
        "--bindconform-json",
        str(out),
        "--bindconform-server",
        "rp=myservers:reuseport",
        "--bindconform-server",
        "ra=myservers:reuseaddr",
    )
    assert result.ret == 0, result.stdout.str()
    assert rows(out, "rp")["exclusive"]["meets"] is False
    assert rows(out, "ra")["exclusive"]["meets"] is True
    why = rows(out, "rp")["exclusive"]["why"]
    assert "received" in str(why), why
    result.stdout.fnmatch_lines(["*server rp: exclusive (tcp) misses*"])
    result.stdout.fnmatch_lines(["*server ra: exclusive (tcp) meets*"])


@pytest.mark.skipif(not LINUX, reason="the expected verdicts are Linux's")
def test_require_fails_the_run_naming_goal_situation_and_cell(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nbindconform_require = exclusive restart\n")
    result = project.runpytest_subprocess(
        *ARGS, "cases", "--bindconform-server", "rp=myservers:reuseport", "-n", "2"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = result.stdout.str()
    assert re.search(
        r"server 'rp' misses required goal 'exclusive' \(tcp\): situation 'rival-on-my-address'"
        r".* against a second socket with SO_REUSEPORT: 'listen rival' succeeded and rival "
        r"received \d+ of 16 sent to .*\n  cell: cases/goal-exclusive-tcp.bind.yaml::"
        r"rival-on-my-address\[server.rp-vs-SO_REUSEPORT-tcp[46]\]",
        text,
    ), text
    ok = project.runpytest_subprocess(
        *ARGS,
        "cases",
        "--bindconform-server",
        "ra=myservers:reuseaddr",
        "--bindconform-require",
        "exclusive",
    )
    assert ok.ret == 0, ok.stdout.str()


@pytest.mark.parametrize(
    ("target", "said"),
    [
        (
            "myservers:broken",
            "server factory 'myservers:broken' raised RuntimeError: config file missing",
        ),
        ("myservers:not_a_socket", "returned int 42, not a socket.socket"),
        (
            "myservers:two_args",
            "has the wrong signature: it must accept (family, type, address, port)",
        ),
        ("nosuchmodule:make", "module 'nosuchmodule' is not importable: ModuleNotFoundError"),
        ("myservers:missing", "'myservers' has no attribute 'missing'"),
    ],
)
def test_bad_factories_are_named_errors_and_other_cells_run(
    project: pytest.Pytester, target: str, said: str
) -> None:
    out = project.path / "r.json"
    result = project.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-k",
        "rival-on-my-address and (server or SO_REUSEADDR-vs-none)",
        "cases",
        "--bindconform-json",
        str(out),
        "--bindconform-server",
        f"bad={target}",
    )
    text = result.stdout.str()
    assert said in text, text
    assert "Traceback" not in text and "pytest_bindconform/" not in text
    report = json.loads(out.read_text())
    statuses = {r["name"]: r["status"] for r in report["results"]}
    bad = [s for n, s in statuses.items() if "server.bad" in n]
    # every cell of the broken server is an error, but where no rival exists on this OS
    assert set(bad) <= {"error", "skip"} and bad.count("error") >= 4, statuses
    others = [s for n, s in statuses.items() if "server.bad" not in n]
    assert others and "error" not in others, statuses
    result.assert_outcomes(
        errors=bad.count("error"),
        passed=others.count("ungated"),
        skipped=bad.count("skip") + others.count("skip"),
    )


def test_malformed_server_option_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("-p", "no:cacheprovider", "--bindconform-server", "nonsense")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*bad server 'nonsense': expected NAME=module:callable*"])
    alone = project.runpytest("-p", "no:cacheprovider", "--bindconform-require", "exclusive")
    assert alone.ret == pytest.ExitCode.USAGE_ERROR
    alone.stderr.fnmatch_lines(["*needs a server to judge*"])
