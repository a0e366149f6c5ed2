"""The data every stage shares: a cell to run and what each oracle expects of it.

Frozen dataclasses of builtins, so cells hash, compare and cross process
boundaries without surprises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OUTCOMES = (
    "ok",
    "INUSE",
    "ACCESS",
    "ADDRNOTAVAIL",
    "INVAL",
    "NOTSUP",
    "REFUSED",
    "TIMEOUT",
    "RESET",
    "same",
    "differ",
)
"""Outcomes a step can have that an expectation can name ('same'/'differ': of a
'compare-ports' or 'rebind' step, see PORT_CALLS)."""

NO_CLAIM = ("n/a", "unknown")
"""Expectation tokens that make no claim: the document says the case does not
exist (n/a), or the oracle says nothing about it (unknown)."""

OPTION_NAMES = ("SO_REUSEADDR", "SO_REUSEPORT", "SO_REUSEPORT_LB", "SO_EXCLUSIVEADDRUSE")
STEP_OPTIONS = ("SO_LINGER0",)
"""Options only a 'setsockopt X OPTION' step sets: SO_LINGER0 is SO_LINGER on with a zero
timeout, so close() aborts the connection with an RST and leaves no TIME_WAIT."""
UNTIL_FREE = "until-free"
"""'bind X until-free': retry the bind until the port is free or a ceiling passes (slow.py)."""
ROLES = ("default", "reuse", "exclusive")
ADDRESS_ROLES = ("wildcard", "specific", "specific2", "v4mapped-specific", "v4mapped-wildcard")
CALLS = ("bind", "listen", "connect", "accept", "send", "recv", "shutdown", "setsockopt", "close")
PORT_CALLS = ("compare-ports", "rebind")
"""'compare-ports A B': did A and B get the same port (outcome same) or not (differ);
'rebind A': close A, then REBINDS times bind a fresh socket like A to port 0 and close
it: same when the port just closed came straight back every time, else differ."""
REBINDS = 100  # the bounded loop of a 'rebind' step
PORT_ROLES = ("0", "privileged", "same-as")
"""A socket's own port, instead of the port every socket of the cell shares: 0 (the
kernel picks one; getsockname reads it back), privileged (a free port below 1024, proved
free like the cell's port), 'same-as X' (the port socket X got)."""
GOAL_CALLS = ("join", "kill")  # join the loopback multicast group; kill the owning child process
STATES = ("bound", "listening", "closed-established", "time-wait")
OWNERS = ("self", "process", "other-user", "unprivileged")
"""unprivileged: this process when the run is unprivileged, else an 'other-user' child
(root drops its privileges there), so privilege rules are seen either way."""
OS_FAMILIES = ("windows", "linux", "darwin", "freebsd")
SPREADS = ("even", "last-binder", "one", "every")
"""How an oracle says the delivery probe's traffic is distributed over the sockets sharing
the port: even (every socket gets some, Jain's fairness index at least the case's
'fairness'), last-binder (the socket bound last gets all), one (a single socket gets all),
every (each socket gets every datagram: multicast copies)."""
FAIRNESS_MIN = 0.8  # Jain's index of 2 sockets at 27:93 of 120; hashing gives ~60:60


@dataclass(frozen=True)
class Reference:
    id: str
    title: str
    url: str = ""
    file: str = ""
    revision: str = ""
    section: str = ""
    quote: str = ""


@dataclass(frozen=True)
class Profile:
    """Translates portable option roles into concrete options per OS kind."""

    id: str
    description: str
    windows: dict[str, tuple[str, ...]]
    posix: dict[str, tuple[str, ...]]

    def resolve(self, role: str, os_family: str) -> tuple[str, ...]:
        table = self.windows if os_family == "windows" else self.posix
        return table[role]


@dataclass(frozen=True)
class Oracle:
    id: str
    kind: str  # document | measured | derived | model
    source: str
    os: str
    reference: str = ""
    table: str = ""
    min_version: str = ""
    max_version: str = ""
    profiles: tuple[str, ...] | None = None  # None: any profile
    sysctl: tuple[tuple[str, str], ...] = ()  # host settings the expectations assume

    @property
    def provenance(self) -> str:
        where = f", {self.table}" if self.table else ""
        return f"{self.kind}: {self.source}{where}"


@dataclass(frozen=True)
class SocketSpec:
    name: str
    family: str  # inet | inet6
    type: str  # stream | dgram
    v6only: bool | None  # None: the OS default
    options: tuple[str, ...]  # roles or raw names, as written
    address: str  # role or literal
    owner: str = "self"  # self | process | other-user | unprivileged
    port: str = ""  # '': the cell's port; else one of PORT_ROLES ('same-as X' in full)

    @property
    def same_as(self) -> str:
        """The socket whose port this one binds ('' unless port is 'same-as X')."""
        return self.port.removeprefix("same-as ") if self.port.startswith("same-as ") else ""


@dataclass(frozen=True)
class Step:
    call: str
    socket: str
    argument: str = ""  # connect: an address role or socket name; setsockopt: an option

    def __str__(self) -> str:
        return f"{self.call} {self.socket}" + (f" {self.argument}" if self.argument else "")


@dataclass(frozen=True)
class Expectation:
    oracle: str
    outcome: str  # one of OUTCOMES or NO_CLAIM
    undefined_delivery: bool = False
    line: int = 0
    receiver: str = ""  # who receives the traffic, when the oracle says so
    spread: str = ""  # one of SPREADS: how the traffic is distributed, when the oracle says so
    fairness_min: float = FAIRNESS_MIN  # spread 'even': the least Jain's index that counts

    @property
    def claims(self) -> bool:
        return self.outcome not in NO_CLAIM

    @property
    def token(self) -> str:
        token = self.outcome + ("*" if self.undefined_delivery else "")
        if self.spread:
            even = f" (fairness ≥ {self.fairness_min})" if self.spread == "even" else ""
            return token + f", spread {self.spread}{even}"
        return token + (f", received by {self.receiver}" if self.receiver else "")


@dataclass(frozen=True)
class GridPosition:
    """Where a cell sits in its published table (page orientation)."""

    row: int
    column: int
    row_label: str
    column_label: str


@dataclass(frozen=True)
class Cell:
    """One runnable scenario under one profile and variant: one test item."""

    suite: str
    name: str  # stable item name, built from axis values only
    key: str  # name without the variant part
    variant: str
    profile: str | None
    sockets: tuple[SocketSpec, ...]
    steps: tuple[Step, ...]
    under_test: int  # index into steps
    expectations: tuple[Expectation, ...]
    line: int
    position: GridPosition | None = None
    state: str = "bound"
    variant_fields: tuple[
        tuple[str, str], ...
    ] = ()  # e.g. (("family", "inet"), ("type", "stream"))
    # connections or datagrams the delivery probe sends when several sockets share the
    # port: 16 show both sides of a two-way load balancer (1 - 2**-15)
    delivery_probes: int = 16

    def socket(self, name: str) -> SocketSpec:
        for spec in self.sockets:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def expectation(self, oracle: str) -> Expectation | None:
        for exp in self.expectations:
            if exp.oracle == oracle:
                return exp
        return None


@dataclass
class Suite:
    id: str
    title: str
    description: str
    path: str
    references: tuple[Reference, ...]
    oracles: dict[str, Oracle]
    profiles: dict[str, Profile]
    cells: list[Cell] = field(default_factory=list)
    grid: dict[str, object] | None = None  # rows/columns labels, orientation, for reports
    facts: tuple[dict[str, str], ...] = ()
    id_position: tuple[int, int] = (1, 1)  # line, column of its 'id:' value, for errors
    goal: Any = None  # goals.Goal of a goal suite (suite-level 'goal:' block)
