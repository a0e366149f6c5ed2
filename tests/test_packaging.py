"""The wheel carries the case library and the report templates, and runs them anywhere.

Builds a wheel of this tree into tmp (pip, build isolation: setuptools comes from the
package index), installs it without dependencies into a directory of its own, and
runs the commands a new user types, from a directory that is no clone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CASES = sorted(p.name for p in (REPO / "cases").glob("*.bind.yaml"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode and any(
        s in done.stderr for s in ("No matching distribution", "connection", "Connection")
    ):
        pytest.skip(f"cannot build a wheel without the package index: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    (found,) = out.glob("pytest_bindconform-*.whl")
    return found


def test_the_wheel_ships_the_library_and_the_templates(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.rsplit("/", 1)[1] for n in names if "/library/" in n)
    assert shipped == CASES
    for template in ("base.html.j2", "merged.html.j2", "host.html.j2", "style.css.j2"):
        assert f"pytest_bindconform/report/templates/{template}" in names


def test_the_installed_wheel_runs_the_library_outside_a_clone(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
         str(wheel)],
        check=True, timeout=300,
    )  # fmt: skip
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, *args], cwd=elsewhere, env=env, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    where = run("-c", "import pytest_bindconform.library as l; print(l.directory())")
    assert Path(where.strip()).is_relative_to(site), where  # the installed copy, not the tree
    assert "ms-using-2003-same-user" in run("-m", "pytest_bindconform", "table", "--list")
    collected = run(
        "-m", "pytest", "--bindconform-library", "--collect-only", "-q", "-p", "no:cacheprovider",
        "-k", "tcp4-bound",
    )  # fmt: skip
    assert "ms-using-2003-same-user.bind.yaml::" in collected
