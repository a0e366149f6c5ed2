"""Build step: ship the case library (cases/, its source at the top of the repository)
inside the package as pytest_bindconform/library/, so `pytest --bindconform-library` and
`python -m pytest_bindconform table --list` work wherever the wheel is installed.

Everything else is configured in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        library = Path(self.build_lib) / "pytest_bindconform" / "library"
        library.mkdir(parents=True, exist_ok=True)
        for case in sorted(Path(__file__).parent.joinpath("cases").glob("*.bind.yaml")):
            self.copy_file(str(case), str(library / case.name))


setup(cmdclass={"build_py": BuildPy})
