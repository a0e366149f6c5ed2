"""Where the shipped case library is: in the package (a wheel) or in the source tree.

The library's source is cases/ at the top of the repository; the build (setup.py)
copies it into the wheel as pytest_bindconform/library/. A case keeps its id
'cases/<file>' wherever it runs from, so reports of a clone and of an installed
wheel merge cell by cell.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
PLACES = (HERE / "library", HERE.parent / "cases")  # installed wheel; clone or editable


def directory() -> Path:
    for place in PLACES:
        if place.is_dir() and any(place.glob("*.bind.yaml")):
            return place
    raise FileNotFoundError(
        "the case library is missing from this installation (looked in "
        + ", ".join(map(str, PLACES))
        + "): reinstall pytest-bindconform"
    )


def display(path: Path) -> str | None:
    """'cases/<file>' for a file of the shipped library, else None."""
    resolved = path.resolve()
    for place in PLACES:
        if resolved.parent == place:
            return f"cases/{resolved.name}"
    return None
