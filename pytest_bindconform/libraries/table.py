"""The library x OS table as Markdown, straight from the profiles.

docs/libraries.md embeds this output, and a test keeps the two equal, so the page can
never say something the data does not.
"""

from __future__ import annotations

from ..model import OS_FAMILIES
from .loader import LibraryProfile

V6ONLY = {True: "V6ONLY=1", False: "V6ONLY=0"}


def cell(profile: LibraryProfile, os_name: str) -> str:
    """What the call sets on one OS: options, IPV6_V6ONLY when it sets it, or why not known."""
    if os_name in profile.fails:
        return f"fails: {profile.fails[os_name]}"
    if os_name not in profile.options:
        return "unknown"
    parts = list(profile.options[os_name]) or ["none"]
    v6only = profile.v6only.get(os_name)
    if v6only is not None:
        parts.append(V6ONLY[v6only])
    return " + ".join(parts)


def markdown(profiles: list[LibraryProfile]) -> str:
    head = ["call", "library", *OS_FAMILIES, "source"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in profiles:
        call = f"`{p.id}` ({p.transport})"
        library = f"{p.name} {p.version}"
        cells = [cell(p, os_name) for os_name in OS_FAMILIES]
        rows.append("| " + " | ".join([call, library, *cells, f"[code]({p.source})"]) + " |")
    return "\n".join(rows) + "\n"
