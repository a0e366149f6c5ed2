"""Is an address this host's own? No packet of a run may ever leave the host.

A successful bind() is no proof: Linux binds any address under ip_nonlocal_bind
or IP_FREEBIND, and every OS binds UDP to multicast and (Linux, BSD) broadcast
addresses. So an address counts as local only if it is loopback (127.0.0.0/8,
::1, their v4-mapped forms) or a unicast address of one of this host's (or this
network namespace's) interfaces, read from the OS: getifaddrs() on Linux, macOS
and FreeBSD, GetUnicastIpAddressTable() on Windows. Multicast groups are allowed
only for binds and for traffic that the probe pins to loopback (see probe.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import socket
import struct
import sys
from functools import cache, lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Where an address the case names may be added to loopback without taking over
# anybody's address: loopback itself and the documentation prefixes.
SAFE_TO_ADD = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "192.0.2.0/24",  # TEST-NET-1, RFC 5737
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "2001:db8::/32",  # RFC 3849
    )
)


@lru_cache(maxsize=4096)  # a run names a few dozen addresses, parsed per socket call
def parse(address: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None


def unmapped(ip: IPAddress) -> IPAddress:
    """The IPv4 address a v4-mapped IPv6 address stands for (traffic goes there)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def endpoint(address: str, port: int) -> tuple[str, int]:
    """One spelling per endpoint: ::ffff:127.0.0.1 (an IPv6 receiver) is 127.0.0.1."""
    return _spelling(address), int(port)


@lru_cache(maxsize=4096)
def _spelling(address: str) -> str:
    """A probe spells a few addresses thousands of times: ipaddress's str() is slow."""
    ip = parse(address)
    return str(unmapped(ip)) if ip is not None else address


def is_multicast(address: str) -> bool:
    ip = parse(address)
    return ip is not None and unmapped(ip).is_multicast


def not_local(address: str) -> str:
    """Why traffic to this address could leave the host ('' when it cannot)."""
    ip = parse(address)
    if ip is None:
        return f"{address!r} is not an IP address"
    ip = unmapped(ip)
    if ip.is_unspecified or ip.is_loopback:
        return ""
    if ip.is_multicast:
        return ""  # bindable; the probe sends to groups on loopback only, TTL 0
    if ip == ipaddress.IPv4Address("255.255.255.255"):
        return f"{address} is the broadcast address: datagrams to it reach every host on the link"
    if ip in interface_addresses():
        return ""
    return f"{address} is not an address of this host's interfaces"


def advice(address: str, family: str, os_family: str) -> str:
    """How to make the address exist here, never by taking over someone else's address."""
    ip = parse(address)
    if ip is None or not any(unmapped(ip) in net for net in SAFE_TO_ADD):
        return (
            "a run never sends to another host, and adding that address here would take over "
            "somebody else's; write a loopback or documentation address in the case "
            "(127.0.0.2, 192.0.2.1, 2001:db8::1)"
        )
    ip = unmapped(ip)
    prefix = 32 if ip.version == 4 else 128
    how = {
        "linux": f"sudo ip addr add {ip}/{prefix} dev lo",
        "darwin": f"sudo ifconfig lo0 alias {ip}",
        "freebsd": f"sudo ifconfig lo0 alias {ip}",
    }.get(os_family, "an alias on the loopback interface")
    return f"add it to loopback: {how}"


@cache
def interface_addresses() -> frozenset[IPAddress]:
    """Unicast addresses of this host's interfaces (read once: a run does not change them)."""
    raw = _windows_addresses() if sys.platform == "win32" else _getifaddrs()
    found = set()
    for text in raw:
        ip = parse(text)
        if ip is not None and not ip.is_multicast:
            found.add(ip)
    return frozenset(found)


# -- POSIX: getifaddrs(3); struct ifaddrs has the same fields on Linux, macOS, FreeBSD ----


class _IfAddrs(ctypes.Structure):
    pass


_IfAddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_IfAddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.c_void_p),
    ("ifa_netmask", ctypes.c_void_p),
    ("ifa_dstaddr", ctypes.c_void_p),  # broadcast or point-to-point peer: never ours
    ("ifa_data", ctypes.c_void_p),
]


def sockaddr_text(raw: bytes, bsd_layout: bool) -> str | None:
    """The address in a struct sockaddr. BSD starts with sa_len (1 byte) then sa_family
    (1 byte), Linux with a 2-byte sa_family; the address sits at offset 4 (sockaddr_in)
    or 8 (sockaddr_in6) in both layouts."""
    family = raw[1] if bsd_layout else struct.unpack_from("=H", raw, 0)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if family == getattr(socket, "AF_INET6", -1) and len(raw) >= 24:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return None


def _getifaddrs() -> list[str]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    head = ctypes.POINTER(_IfAddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        raise OSError(ctypes.get_errno(), "getifaddrs() failed")
    out = []
    try:
        node = head
        while node:
            where = node.contents.ifa_addr
            if where:
                bsd = not sys.platform.startswith("linux")
                start = ctypes.string_at(where, 2)  # then only as much as that family has
                family = start[1] if bsd else struct.unpack("=H", start)[0]
                size = {socket.AF_INET: 8, getattr(socket, "AF_INET6", -1): 24}.get(family)
                text = sockaddr_text(ctypes.string_at(where, size), bsd) if size else None
                if text:
                    out.append(text)
            node = node.contents.ifa_next
    finally:
        libc.freeifaddrs(head)
    return out


# -- Windows: GetUnicastIpAddressTable (iphlpapi, netioapi.h), unicast rows only ----------


class _SockaddrIn6(ctypes.Structure):
    _fields_ = [
        ("family", ctypes.c_ushort),
        ("port", ctypes.c_ushort),
        ("flowinfo", ctypes.c_uint32),
        ("addr", ctypes.c_ubyte * 16),
        ("scope_id", ctypes.c_uint32),
    ]


class _SockaddrInet(ctypes.Union):  # SOCKADDR_INET: sockaddr_in, sockaddr_in6 or family
    _fields_ = [("ipv6", _SockaddrIn6), ("family", ctypes.c_ushort)]


class _UnicastRow(ctypes.Structure):  # MIB_UNICASTIPADDRESS_ROW
    _fields_ = [
        ("Address", _SockaddrInet),
        ("InterfaceLuid", ctypes.c_uint64),
        ("InterfaceIndex", ctypes.c_uint32),
        ("PrefixOrigin", ctypes.c_int),
        ("SuffixOrigin", ctypes.c_int),
        ("ValidLifetime", ctypes.c_uint32),
        ("PreferredLifetime", ctypes.c_uint32),
        ("OnLinkPrefixLength", ctypes.c_uint8),
        ("SkipAsSource", ctypes.c_uint8),
        ("DadState", ctypes.c_int),
        ("ScopeId", ctypes.c_uint32),
        ("CreationTimeStamp", ctypes.c_int64),
    ]


class _UnicastTable(ctypes.Structure):  # MIB_UNICASTIPADDRESS_TABLE (rows follow)
    _fields_ = [("NumEntries", ctypes.c_uint32), ("Table", _UnicastRow * 1)]


WIN_AF_INET, WIN_AF_INET6 = 2, 23


def unicast_rows_text(rows: list[_UnicastRow]) -> list[str]:
    out = []
    for row in rows:
        raw = bytes(row.Address.ipv6)
        if row.Address.family == WIN_AF_INET:
            out.append(socket.inet_ntop(socket.AF_INET, raw[4:8]))
        elif row.Address.family == WIN_AF_INET6:
            out.append(str(ipaddress.IPv6Address(raw[8:24])))
    return out


def _windows_addresses() -> list[str]:
    if sys.platform != "win32":  # interface_addresses() calls this on Windows only
        return []
    iphlpapi = ctypes.WinDLL("iphlpapi")
    table = ctypes.POINTER(_UnicastTable)()
    if iphlpapi.GetUnicastIpAddressTable(0, ctypes.byref(table)) != 0:  # AF_UNSPEC
        raise OSError("GetUnicastIpAddressTable() failed")
    try:
        count = table.contents.NumEntries
        first = ctypes.addressof(table.contents.Table)
        rows = (_UnicastRow * count).from_address(first)
        return unicast_rows_text(list(rows))
    finally:
        iphlpapi.FreeMibTable(table)
