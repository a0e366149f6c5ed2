"""Short, readable names for hosts: the matrix's column heads.

`windows-2022 py3.13`, `linux 6.8 py3.10 root`: what tells one column from
another at a glance. The full fingerprint stays in the report, one click away.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

# Windows Server builds as GitHub's runners name them (windows-2019, -2022, -2025).
WINDOWS_BUILDS = {"17763": "2019", "20348": "2022", "26100": "2025"}
DEFAULT_GATES = {"windows": "ms-using-2003-same-user"}


def release(host: dict[str, Any]) -> str:
    """The part of the OS version that decides results: kernel major.minor, Windows build."""
    os_name, version = host["os"], str(host.get("os_version") or "")
    if os_name == "windows":
        build = version.split(".")[-1] if version else ""
        return f"windows-{WINDOWS_BUILDS[build]}" if build in WINDOWS_BUILDS else f"windows {build}"
    numbers = re.match(r"\d+(\.\d+)?", version)
    short = numbers.group(0) if numbers else version
    return f"{'macos' if os_name == 'darwin' else os_name} {short}".strip()


def host_label(info: dict[str, Any]) -> str:
    h = info["host"]
    parts = [release(h), "py" + ".".join(str(h["python"]).split(".")[:2])]
    if h.get("admin"):
        parts.append("admin" if h["os"] == "windows" else "root")
    if str(info.get("isolation", "")).startswith("netns"):
        parts.append("netns")
    gate = info.get("gate")
    if gate and gate != DEFAULT_GATES.get(h["os"], h["os"]):
        parts.append(f"gate {gate}")
    if info.get("simulated"):
        parts.append("SIMULATED")
    return " ".join(parts)


def host_labels(infos: list[dict[str, Any]]) -> list[str]:
    """One label per host, unique: where two would read alike, the full release tells them
    apart, then a number."""
    out = [host_label(i) for i in infos]
    twice = {label for label, n in Counter(out).items() if n > 1}
    out = [
        f"{label} ({info['host']['os_release']})" if label in twice else label
        for label, info in zip(out, infos, strict=True)
    ]
    twice = {label for label, n in Counter(out).items() if n > 1}
    seen: Counter[str] = Counter()
    for i, label in enumerate(out):
        if label in twice:
            seen[label] += 1
            out[i] = f"{label} #{seen[label]}"
    return out


ROLE_WORD = re.compile(r"\b(default|reuse|exclusive)\b")


def with_options(label: str, resolved: dict[str, str]) -> str:
    """'reuse, wildcard' -> 'reuse (SO_REUSEPORT), wildcard': the role and what it became
    on this host under the grid's profile, as the `table` command names both."""
    return ROLE_WORD.sub(
        lambda m: (
            f"{m.group(1)} ({resolved[m.group(1)]})" if m.group(1) in resolved else m.group(1)
        ),
        label,
    )
