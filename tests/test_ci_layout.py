"""CI plumbing on this machine: runs never touch tracked files, and the merge job merges.

Why: the first CI run failed at the merge because every leg uploaded the tracked
reference report along with its own. These tests run, in a throwaway clone, the
very report commands of tox.ini and the very merge script of the workflow
(.ci/merge-legs) on artifacts laid out as actions/download-artifact@v7 lays them
out: with `pattern:` and no merge-multiple, one directory per matched artifact,
or the artifact's files directly in `path` when only one matches
(src/download-artifact.ts of v7.0.0: `artifacts.length === 1 ? resolvedPath :
path.join(resolvedPath, artifact.name)`).

The reports of the macOS, Windows and FreeBSD legs are LAYOUT FIXTURES: one real
run on this Linux machine whose host fields are relabelled. Only the file layout
and the merge plumbing are under test, never what those systems do.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
PORTS = f"--bindconform-ports={12000 + 1000 * OUTER}-{12999 + 1000 * OUTER}"
# A slice of the real library: a grid with other-user cells, another grid, a cases suite.
SUBSET = (
    "lifecycle-sharing or (reuseport-tcp4-bound and (ms-using-xp or ms-using-2003-different-users))"
)
FAST = ["-k", SUBSET, "--bindconform-explore=0", PORTS, "-p", "no:hypothesispytest"]
# (artifact name, os, os_release, privileged pass?) for 3 OS x 2 Python legs + the FreeBSD VM
LEGS = [
    *(
        (f"conform-{runner}-py{py}", os_name, release, py, os_name != "windows")
        for runner, os_name, release in (
            ("ubuntu-latest", "linux", "layout fixture: a Linux run labelled ubuntu-latest"),
            ("macos-latest", "darwin", "layout fixture: a Linux run labelled macos-latest"),
            ("windows-latest", "windows", "layout fixture: a Linux run labelled windows-latest"),
        )
        for py in ("3.10", "3.13")
    ),
    (
        "conform-freebsd-15.1",
        "freebsd",
        "layout fixture: a Linux run labelled freebsd 15.1",
        "3.11",
        False,
    ),
]

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or not shutil.which("git"), reason="needs git and this Linux host"
)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


def tox_command(env: str) -> list[str]:
    """The pytest command a tox env runs, as tox would expand it ({os} stays for the plugin)."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "tox.ini", encoding="utf-8")
    text = (
        ini[f"testenv:{env}"]["commands"]
        .replace("\\\n", " ")
        .replace("\\{", "{")
        .replace("\\}", "}")
    )
    words = shlex.split(text.replace("{posargs}", ""))
    if words[:2] == ["sudo", "-n"]:  # the privileged env: sudo runs {envpython} -m pytest
        assert words[2:5] == ["{envpython}", "-m", "pytest"], words
        words = words[4:]
    assert words[0] == "pytest", words
    return [sys.executable, "-m", *words]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The worktree's files as git sees them (tracked and new, not ignored), committed."""
    dest = tmp_path_factory.mktemp("clone")
    files = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "snapshot")
    return dest


@pytest.fixture(scope="module")
def ran(clone: Path) -> Path:
    """`tox -e conform` then `tox -e privileged` (their pytest commands) on a library slice."""
    for env in ("conform", "privileged"):
        done = subprocess.run(
            [*tox_command(env), *FAST], cwd=clone, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return clone


def test_reports_dir_tracks_only_its_readme() -> None:
    assert git(ROOT, "ls-files", "reports").split() == ["reports/README.md"]
    probe = ["reports/linux.json", "reports/windows-privileged.html", "reports/x.json.tmp"]
    probe += ["reports/counterexamples/a.bind.yaml", "reports/measured/linux-a.measured.yaml"]
    assert git(ROOT, "check-ignore", "--no-index", *probe).split() == probe


def test_the_reference_run_is_where_no_run_writes() -> None:
    tracked = git(ROOT, "ls-files", "docs/reference-run").split()
    assert {"docs/reference-run/linux.json", "docs/reference-run/linux.md"} <= set(tracked)
    for env in ("conform", "privileged"):
        assert not any("docs/" in word for word in tox_command(env))
    reference = " ".join(tox_command("reference"))
    assert "docs/reference-run/{os}.json" in reference and "reports/" not in reference


def test_conform_and_privileged_leave_git_status_clean(ran: Path) -> None:
    assert git(ran, "status", "--porcelain", "--untracked-files=all") == ""
    written = sorted(p.name for p in (ran / "reports").iterdir())
    runs = [f"linux{sfx}.{ext}" for sfx in ("", "-privileged") for ext in ("html", "json", "md")]
    assert written == sorted(["README.md", *runs])


def test_privileged_pass_holds_only_other_user_cells(ran: Path) -> None:
    doc = json.loads((ran / "reports/linux-privileged.json").read_text(encoding="utf-8"))
    owners = {
        tuple(s["owner"] for s in r["scenario"]["sockets"])
        for r in doc["results"]
        if r.get("scenario")
    }
    assert doc["results"] and all("other-user" in o for o in owners), owners


def _relabel(
    report: Path, dest: Path, os_name: str, release: str, python: str, admin: bool
) -> None:
    doc: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    host = doc["run_info"]["host"]
    host.update(os=os_name, os_release=release, python=python, admin=admin)
    doc["run_info"]["python"] = python
    name = report.name.replace("linux", os_name)
    (dest / name).write_text(json.dumps(doc), encoding="utf-8")
    for ext in ("md", "html"):  # the leg's other outputs, as its reports/ would hold them
        (dest / name.replace(".json", f".{ext}")).write_text(f"fixture {ext}\n", encoding="utf-8")


def _leg(ran: Path, where: Path, os_name: str, release: str, py: str, privileged: bool) -> None:
    """One leg's reports/ as uploaded: its own reports and the blocks measured from them."""
    where.mkdir(parents=True)
    _relabel(ran / "reports/linux.json", where, os_name, release, py, os_name == "freebsd")
    if privileged:
        _relabel(ran / "reports/linux-privileged.json", where, os_name, release, py, True)
    measure = [sys.executable, "-m", "pytest_bindconform", "measure", "--from-report", str(where)]
    subprocess.run(
        [*measure, "--out", str(where / "measured")], cwd=ran, check=True, capture_output=True
    )


def _merge(ran: Path, legs: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / ".ci/merge-legs"), str(legs), str(out)],
        cwd=ran,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=600,
    )


def test_merge_job_merges_the_legs_as_download_artifact_lays_them_out(
    ran: Path, tmp_path: Path
) -> None:
    legs = tmp_path / "legs"
    for artifact, os_name, release, py, privileged in LEGS:
        _leg(ran, legs / artifact, os_name, release, py, privileged)
    done = _merge(ran, legs, tmp_path / "merged")
    assert done.returncode == 0, done.stdout + done.stderr
    merged = json.loads((tmp_path / "merged/conformance.json").read_text(encoding="utf-8"))
    sources = sorted(s for h in merged["hosts"] for s in h["sources"])
    expected = sorted(
        str(legs / artifact / f"{os_name}{suffix}.json")
        for artifact, os_name, _, _, privileged in LEGS
        for suffix in ("", "-privileged")[: 1 + privileged]
    )
    assert sources == expected  # 11 columns: 6 legs, 4 privileged passes, FreeBSD
    assert len(merged["hosts"]) == len(expected) == 11
    # the blocks of every leg are listed, and kept per leg in the merged artifact
    listed = {m["file"].split("/")[0] for m in merged["measured"]}
    assert listed == {artifact for artifact, *_ in LEGS}
    for m in merged["measured"]:
        assert (tmp_path / "merged/measured" / m["file"]).is_file()
    md = (tmp_path / "merged/conformance.md").read_text(encoding="utf-8")
    assert f"## Measured expectation blocks ({len(merged['measured'])} files)" in md


def test_one_artifact_lands_in_legs_itself(ran: Path, tmp_path: Path) -> None:
    """download-artifact v5+: a pattern matching one artifact extracts it into `path`."""
    _leg(ran, tmp_path / "legs", "windows", "layout fixture: windows-latest", "3.13", False)
    done = _merge(ran, tmp_path / "legs", tmp_path / "merged")
    assert done.returncode == 0, done.stdout + done.stderr
    merged = json.loads((tmp_path / "merged/conformance.json").read_text(encoding="utf-8"))
    assert [h["sources"] for h in merged["hosts"]] == [[str(tmp_path / "legs/windows.json")]]
    assert merged["measured"] and all("/" not in m["file"] for m in merged["measured"])


def test_old_layout_with_the_tracked_report_in_every_leg_is_refused(
    ran: Path, tmp_path: Path
) -> None:
    """The defect this layout fixes: a copy of one report in two legs is a duplicate cell."""
    legs = tmp_path / "legs"
    _leg(ran, legs / "conform-ubuntu-latest-py3.10", "linux", "fixture", "3.10", False)
    _leg(ran, legs / "conform-macos-latest-py3.10", "darwin", "fixture", "3.10", False)
    shutil.copy(
        legs / "conform-ubuntu-latest-py3.10/linux.json", legs / "conform-macos-latest-py3.10"
    )
    done = _merge(ran, legs, tmp_path / "merged")
    assert done.returncode == 2 and "both hold cell" in done.stderr, done.stderr


def test_no_report_at_all_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "legs").mkdir()
    done = _merge(ROOT, tmp_path / "legs", tmp_path / "merged")
    assert done.returncode == 1 and "no leg uploaded a JSON report" in done.stdout


def test_privileged_env_is_the_conform_command_on_other_user_cells_only() -> None:
    conform, privileged = tox_command("conform"), tox_command("privileged")
    expected = [w for w in conform if not w.startswith("--bindconform-explore")]
    expected = [w.replace("{os}.", "{os}-privileged.") for w in expected]
    assert privileged == [*expected[:4], "-m", "other_user", *expected[4:]]


def test_other_user_marker_selects_exactly_the_cells_owned_by_another_user() -> None:
    """What the privileged pass runs: every cell with an other-user socket, nothing else."""
    from pytest_bindconform import cases, goals, host
    from pytest_bindconform.report import answers

    extra = answers.run_candidates([], "", host.fingerprint(probe=False).os).extra
    want = set()
    for path in cases.discover(ROOT / "cases"):
        suite = cases.load_suite(path)
        goals.add_candidates(suite, extra)  # library profiles are goal candidates too
        want |= {
            f"{path.relative_to(ROOT).as_posix()}::{cell.name}"
            for cell in suite.cells
            if any(spec.owner in ("other-user", "unprivileged") for spec in cell.sockets)
        }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "cases", "-m", "other_user", "--collect-only", "-q"]
        + ["-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    got = {line for line in done.stdout.splitlines() if "::" in line}
    assert want and got == want
