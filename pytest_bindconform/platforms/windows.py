"""Windows: netsh port ranges, Winsock error codes, SYN retries, a second account.

- A loopback connect to a port without listener is refused only after ~2 s of
  SYN retransmissions (libuv PR #2896, https://github.com/libuv/libuv/pull/2896;
  Go's net package does the same in src/net/fd_windows.go). SIO_TCP_INITIAL_RTO
  with MaxSynRetransmissions = TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS (Windows
  10.0.16299 and later) makes it fail at once; where that ioctl is unavailable,
  the connect timeout outlasts the retries instead.
- 'other-user' sockets are held by a child started as a second local account
  (CreateProcessWithLogonW), which talks back over a loopback TCP control
  channel (pipes do not cross logon sessions reliably). Helpers are fresh
  interpreters (no fork()); the pool (ownerpool.py) keeps each for many cells.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import struct
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from . import _control
from ._common import Facts, Range, Starter, System
from ._common import connect_limit as _limit

NAME = "windows"
ERRORS = {
    "INUSE": ("WSAEADDRINUSE", 10048),
    "ACCESS": ("WSAEACCES", 10013),
    "ADDRNOTAVAIL": ("WSAEADDRNOTAVAIL", 10049),
    "INVAL": ("WSAEINVAL", 10022),
    "NOTSUP": ("WSAEOPNOTSUPP", 10045),
    "REFUSED": ("WSAECONNREFUSED", 10061),
    "TIMEOUT": ("WSAETIMEDOUT", 10060),
}
# measured on windows-latest runners at ~2.0 s (issue 9); libuv PR #2896: "will retry for 2s"
CONNECT_REFUSAL_SECONDS = 2.0
# Vista and later (Microsoft KB 929851; recorded: netsh-dynamicport-tcp.txt)
EPHEMERAL_DEFAULT = (49152, 65535)
SIO_TCP_INITIAL_RTO = 0x98000011  # _WSAIOW(IOC_VENDOR, 17), mstcpip.h
TCP_INITIAL_RTO_UNSPECIFIED_RTT = 0xFFFF
TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS = 0xFE
USER_ENV, PASSWORD_ENV = "BINDCONFORM_OTHER_USER", "BINDCONFORM_OTHER_PASSWORD"

EXCLUDED_COMMANDS = tuple(
    ("netsh", "interface", ip, "show", "excludedportrange", f"protocol={proto}")
    for ip in ("ipv4", "ipv6")
    for proto in ("tcp", "udp")
)
DYNAMIC_COMMAND = ("netsh", "int", "ipv4", "show", "dynamicport", "tcp")
VER_COMMAND = ("cmd", "/c", "ver")
# RFC 1122 3.2.1.3: all of 127.0.0.0/8 is loopback, and Windows answers on all of it
LOOPBACK = {"inet": ("127.0.0.1", "127.0.0.2"), "inet6": ("::1",)}


def connect_limit(requested: float, shortened: bool = False) -> tuple[float, str]:
    return _limit(requested, CONNECT_REFUSAL_SECONDS, shortened)


def rto_parameters() -> bytes:
    """TCP_INITIAL_RTO_PARAMETERS {USHORT Rtt; UCHAR MaxSynRetransmissions;} with its pad byte."""
    return struct.pack(
        "<HBx", TCP_INITIAL_RTO_UNSPECIFIED_RTT, TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS
    )


def prepare_connect(sock: Any) -> bool:
    """Ask Winsock not to retransmit the SYN (what libuv and Go do for loopback);
    True when it accepted. Python's socket.ioctl() knows only three codes, so WSAIoctl
    is called through ctypes."""
    loader: Any = getattr(ctypes, "WinDLL", None)
    if loader is None:
        return False
    try:
        ws2 = loader("ws2_32")
        params = ctypes.create_string_buffer(rto_parameters(), 4)
        returned = ctypes.c_ulong(0)
        result = ws2.WSAIoctl(
            ctypes.c_size_t(sock.fileno()),
            ctypes.c_ulong(SIO_TCP_INITIAL_RTO),
            params,
            ctypes.c_ulong(4),
            None,
            ctypes.c_ulong(0),
            ctypes.byref(returned),
            None,
            None,
        )
    except (OSError, AttributeError):
        return False
    return int(result) == 0


def rst_linger() -> bytes:
    """Winsock's struct linger is two u_shorts."""
    return struct.pack("HH", 1, 0)


def is_admin() -> bool:
    loader: Any = getattr(ctypes, "windll", None)
    try:
        return bool(loader.shell32.IsUserAnAdmin())
    except (OSError, AttributeError):
        return False


def parse_excluded_ranges(text: str) -> list[Range]:
    """Rows of `netsh interface ipv4 show excludedportrange` ('Start Port  End Port', in any
    language; a trailing '*' marks an administered exclusion, which binds refuse just the same)."""
    ranges = []
    for line in text.splitlines():
        parts = line.replace("*", " ").split()
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            ranges.append((int(parts[0]), int(parts[1])))
    return ranges


def parse_dynamic_range(text: str) -> Range | None:
    """`netsh int ipv4 show dynamicport tcp`: 'Start Port : 49152', 'Number of Ports : 16384'
    (labels vary with the language: the numbers are taken in order)."""
    numbers = [
        int(line.rsplit(":", 1)[1])
        for line in text.splitlines()
        if ":" in line and line.rsplit(":", 1)[1].strip().isdigit()
    ]
    if len(numbers) < 2:
        return None
    return numbers[0], numbers[0] + numbers[1] - 1


def parse_ver(text: str) -> str:
    """`ver`: 'Microsoft Windows [Version 10.0.19041.329]' -> '10.0.19041' (major.minor.build,
    what platform.version() gives; any language: 'Versión', 'version')."""
    m = re.search(r"\[[^\]\d]*(\d+\.\d+\.\d+)(?:\.\d+)?\]", text)
    return m.group(1) if m else ""


def facts(system: System) -> Facts:
    sysname, release, version, machine = system.uname()
    version = parse_ver(system.run(VER_COMMAND)) or version
    build = version.split(".")[2] if version.count(".") >= 2 else ""
    if not release and build.isdigit():
        release = "11" if int(build) >= 22000 else "10"  # Windows 11 starts at build 22000
    excluded: set[Range] = set()
    for argv in EXCLUDED_COMMANDS:
        excluded.update(parse_excluded_ranges(system.run(argv)))
    return Facts(
        os=NAME,
        os_release=release,
        os_version=version,
        kernel=f"{sysname or 'Windows'} {release}",
        machine=machine,
        excluded_ports=tuple(sorted(excluded)),
        ephemeral_ports=parse_dynamic_range(system.run(DYNAMIC_COMMAND)),
        addresses=LOOPBACK,
    )


def enter_isolation() -> list[str]:
    from ..isolate import IsolationUnavailable

    raise IsolationUnavailable("network namespaces exist only on Linux, not Windows")


# -- a second account ---------------------------------------------------------
def credentials(env: Mapping[str, str] | None = None) -> tuple[str, str, str] | None:
    """(user, domain, password) from BINDCONFORM_OTHER_USER / _PASSWORD; '.' is this machine."""
    env = os.environ if env is None else env
    user, password = env.get(USER_ENV, ""), env.get(PASSWORD_ENV, "")
    if not user or not password:
        return None
    domain, _, name = user.rpartition("\\")
    return name, domain or ".", password


def other_user_problem() -> str | None:
    if credentials() is not None:
        return None
    return (
        "owner 'other-user' on Windows runs the owning process as a second local account: "
        f"set {USER_ENV} and {PASSWORD_ENV} to that account's name and password "
        "(e.g. net user bindconform-other <password> /add)"
    )


def child_command(python: str, control: str) -> str:
    """The command line of the owning child (CreateProcessWithLogonW takes one string)."""
    return subprocess.list2cmdline([python, "-m", "pytest_bindconform.owner", "--control", control])


def child_environment(base: Mapping[str, str], token: str) -> str:
    """A CREATE_UNICODE_ENVIRONMENT block: sorted 'NAME=value' strings, each NUL-terminated,
    then one more NUL. The token travels here, not on the command line other users can read;
    PYTHONPATH lets the other account's interpreter import this package."""
    env = {k: v for k, v in base.items() if k.upper() not in ("PYTHONPATH", _control.TOKEN_ENV)}
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, base.get("PYTHONPATH")) if p)
    env[_control.TOKEN_ENV] = token
    return (
        "".join(f"{k}={v}\0" for k, v in sorted(env.items(), key=lambda kv: kv[0].upper())) + "\0"
    )


class LogonOwner:
    """A child process running as the second account, reached over the control channel."""

    LOGON_WITH_PROFILE = 0x1
    CREATE_UNICODE_ENVIRONMENT = 0x400
    CREATE_NO_WINDOW = 0x08000000

    def __init__(self, user: str, domain: str, password: str):
        self.listener = _control.Listener()
        self.process: Any = None
        try:
            self.process = _create_process_with_logon(
                user,
                domain,
                password,
                child_command(sys.executable, self.listener.address),
                child_environment(os.environ, self.listener.token),
                self.LOGON_WITH_PROFILE,
                self.CREATE_UNICODE_ENVIRONMENT | self.CREATE_NO_WINDOW,
            )
            self.rfile, self.wfile = self.listener.accept()
        except BaseException:
            self.close()
            raise

    def kill(self) -> None:
        """A crash: TerminateProcess, then the usual close and reap."""
        loader: Any = getattr(ctypes, "windll", None)
        if loader is not None and self.process is not None:
            loader.kernel32.TerminateProcess(self.process[0], 1)
        self.close()

    def close(self) -> None:
        for f in ("wfile", "rfile"):
            with contextlib.suppress(OSError, AttributeError):
                getattr(self, f).close()
        self.listener.close()
        if self.process is not None:
            _reap(self.process)
            self.process = None


class SpawnedOwner:
    """A fresh interpreter of this user (Windows has no fork()), over its stdin/stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_bindconform.owner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin and self.proc.stdout
        self.wfile: IO[str] = self.proc.stdin
        self.rfile: IO[str] = self.proc.stdout

    def kill(self) -> None:
        """A crash: TerminateProcess (Popen.kill), then the usual close."""
        self.proc.kill()
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.close()
        with contextlib.suppress(OSError):
            self.rfile.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def open_sockets(keep: int) -> int | None:
    """Winsock sockets are handles, not descriptors that can be listed: the helper's reset
    can only close the ones it knows (ops.Executor's)."""
    del keep
    return None


class Spawner:
    """Starts helpers of one owner kind: each a fresh interpreter (Windows has no fork()),
    as a second account for 'other-user'. A helper serves many cells (reset in between);
    a new one is spawned only after a kill."""

    def __init__(self, owner: str):
        self.owner = owner
        self.account = credentials() if owner == "other-user" else None
        if owner == "other-user" and self.account is None:
            raise PermissionError(other_user_problem())

    def start(self) -> LogonOwner | SpawnedOwner:
        helper = LogonOwner(*self.account) if self.account else SpawnedOwner()
        try:  # the helper takes this interpreter's sys.path (a user's server factories)
            helper.wfile.write(json.dumps({"op": "hello", "path": sys.path}) + "\n")
            helper.wfile.flush()
            answer = json.loads(helper.rfile.readline() or "{}")
        except (OSError, ValueError) as exc:
            helper.kill()
            raise PermissionError(f"the {self.owner} helper did not start: {exc}") from None
        if answer.get("outcome") != "ok":
            helper.kill()
            raise PermissionError(f"the {self.owner} helper refused: {answer.get('error')}")
        return helper

    def close(self) -> None:
        """Nothing runs between helpers: each helper is closed by the pool."""


def owner_starter(owner: str) -> Starter:
    return Spawner(owner)


def _create_process_with_logon(
    user: str, domain: str, password: str, command: str, environment: str, logon: int, flags: int
) -> tuple[int, int]:
    """advapi32 CreateProcessWithLogonW; returns (process handle, thread handle)."""
    from ctypes import wintypes

    class STARTUPINFOW(ctypes.Structure):
        _fields_ = [
            ("cb", wintypes.DWORD),
            ("lpReserved", wintypes.LPWSTR),
            ("lpDesktop", wintypes.LPWSTR),
            ("lpTitle", wintypes.LPWSTR),
            *[(n, wintypes.DWORD) for n in ("dwX", "dwY", "dwXSize", "dwYSize")],
            *[(n, wintypes.DWORD) for n in ("dwXCountChars", "dwYCountChars")],
            ("dwFillAttribute", wintypes.DWORD),
            ("dwFlags", wintypes.DWORD),
            ("wShowWindow", wintypes.WORD),
            ("cbReserved2", wintypes.WORD),
            ("lpReserved2", ctypes.c_void_p),
            ("hStdInput", wintypes.HANDLE),
            ("hStdOutput", wintypes.HANDLE),
            ("hStdError", wintypes.HANDLE),
        ]

    class PROCESS_INFORMATION(ctypes.Structure):
        _fields_ = [
            ("hProcess", wintypes.HANDLE),
            ("hThread", wintypes.HANDLE),
            ("dwProcessId", wintypes.DWORD),
            ("dwThreadId", wintypes.DWORD),
        ]

    loader: Any = getattr(ctypes, "WinDLL")  # noqa: B009 (Windows only)
    advapi32 = loader("advapi32", use_last_error=True)
    startup = STARTUPINFOW()
    startup.cb = ctypes.sizeof(STARTUPINFOW)
    info = PROCESS_INFORMATION()
    ok = advapi32.CreateProcessWithLogonW(
        wintypes.LPCWSTR(user),
        wintypes.LPCWSTR(domain),
        wintypes.LPCWSTR(password),
        wintypes.DWORD(logon),
        None,
        ctypes.create_unicode_buffer(command),  # lpCommandLine must be writable
        wintypes.DWORD(flags),
        ctypes.create_unicode_buffer(environment, len(environment)),
        None,
        ctypes.byref(startup),
        ctypes.byref(info),
    )
    if not ok:
        code = getattr(ctypes, "get_last_error")()  # noqa: B009
        raise PermissionError(
            f"CreateProcessWithLogonW as {domain}\\{user} failed (error {code}); check "
            f"{USER_ENV}/{PASSWORD_ENV} and that the account may log on locally"
        )
    return int(info.hProcess or 0), int(info.hThread or 0)


def _reap(handles: tuple[int, int]) -> None:
    loader: Any = getattr(ctypes, "windll", None)
    if loader is None:
        return
    kernel32 = loader.kernel32
    process, thread = handles
    if kernel32.WaitForSingleObject(process, 5000) != 0:  # not WAIT_OBJECT_0
        kernel32.TerminateProcess(process, 1)
        kernel32.WaitForSingleObject(process, 5000)
    kernel32.CloseHandle(thread)
    kernel32.CloseHandle(process)
