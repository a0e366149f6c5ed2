"""What macOS and FreeBSD share: sysctl port ranges, ifconfig lo0, no netns."""

from __future__ import annotations

from ._common import Range, System, parse_ifconfig, parse_sysctl, sysctl_range

PORTRANGE = ("net.inet.ip.portrange.first", "net.inet.ip.portrange.last")
SYSCTL_COMMAND = ("sysctl", *PORTRANGE)
IFCONFIG_COMMAND = ("ifconfig", "lo0")


def ephemeral(system: System) -> tuple[dict[str, str], Range | None]:
    values = parse_sysctl(system.run(SYSCTL_COMMAND))
    return values, sysctl_range(values, *PORTRANGE)


def loopback(system: System) -> dict[str, tuple[str, ...]] | None:
    text = system.run(IFCONFIG_COMMAND)
    return parse_ifconfig(text) if text.strip() else None


def no_isolation(name: str) -> list[str]:
    from ..isolate import IsolationUnavailable

    raise IsolationUnavailable(f"network namespaces exist only on Linux, not {name}")
