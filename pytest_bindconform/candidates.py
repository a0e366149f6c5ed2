"""Candidates: the setting "my" socket uses in a goal suite.

A candidate is either a set of raw options (plus, where it matters, the
IPV6_V6ONLY it sets), or a factory: a callable `f(family, type, address, port)`
returning a bound socket, made exactly as a user's server (--bindconform-server)
or a library call (pytest_bindconform.libraries) makes it. Either way the same
situations judge it.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .model import OPTION_NAMES

Factory = Callable[[str, str, str, int], socket.socket]

STANDARD_OPTIONS = (
    "none",
    "SO_REUSEADDR",
    "SO_EXCLUSIVEADDRUSE",
    "SO_REUSEPORT",
    "SO_REUSEPORT_LB",
    "SO_REUSEADDR+SO_REUSEPORT",
)
"""Option sets every goal tries, simplest first (the order recommendations prefer)."""


def parse_set(text: str) -> tuple[str, ...]:
    """'none' -> (), 'SO_REUSEADDR+SO_REUSEPORT' -> the names (the schema checked them)."""
    return () if text == "none" else tuple(text.split("+"))


def set_name(options: tuple[str, ...]) -> str:
    return "+".join(options) or "none"


@dataclass(frozen=True)
class Candidate:
    id: str  # part of every cell id: 'SO_REUSEADDR', 'SO_REUSEADDR.v6only', 'server.myapp'
    name: str  # readable: 'SO_REUSEADDR, V6ONLY on'
    options: tuple[str, ...] = ()  # raw options it sets on its own socket (described/known)
    v6only: bool | None = None  # IPV6_V6ONLY on its inet6 sockets; None: the OS default
    factory: str = ""  # 'module:callable' (a user's server) or 'library:<profile id>'
    kind: str = "options"  # options | server | library
    library: dict[str, str] | None = field(default=None, compare=False, hash=False)

    @property
    def simplicity(self) -> tuple[int, int]:
        """Fewer options first, the standard order among equals; factories after."""
        order = STANDARD_OPTIONS.index(self.base) if self.base in STANDARD_OPTIONS else 99
        return (len(self.options) if self.kind == "options" else 9, order)

    @property
    def base(self) -> str:
        """The option set without the V6ONLY part: what joins goals into one recommendation."""
        return set_name(self.options) if self.kind == "options" else self.id


def from_options(text: str, v6only: bool | None = None) -> Candidate:
    options = parse_set(text)
    name = " + ".join(options) or "no option"
    cid = text
    if v6only is not None:
        cid += ".v6only" if v6only else ".dual"
        name += ", V6ONLY on" if v6only else ", V6ONLY off"
    return Candidate(cid, name, options, v6only)


def standard(options: list[str] | None, v6only: list[bool] | None) -> list[Candidate]:
    sets = options or list(STANDARD_OPTIONS)
    designs: list[bool | None] = list(v6only) if v6only else [None]
    return [from_options(s, v) for s in sets for v in designs]


# -- user servers (--bindconform-server NAME=module:callable) -------------------


class FactoryProblem(Exception):
    """A factory that cannot make 'my' socket; the message names it and says why."""


def parse_servers(entries: list[str]) -> list[Candidate]:
    """'NAME=module:callable' entries -> server candidates; ValueError on malformed ones."""
    out: list[Candidate] = []
    for entry in entries:
        for part in entry.split():
            name, sep, target = part.partition("=")
            module, colon, attr = target.partition(":")
            if not sep or not colon or not name or not module or not attr:
                raise ValueError(
                    f"bad server {part!r}: expected NAME=module:callable, e.g. "
                    "myapp=myapp.server:make_listener"
                )
            if not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"bad server name {name!r}: letters, digits, '-' and '_' only")
            if any(c.id == f"server.{name}" for c in out):
                raise ValueError(f"server {name!r} is declared twice")
            out.append(Candidate(f"server.{name}", name, (), None, target, "server"))
    return out


_LOADED: dict[str, Factory | FactoryProblem] = {}


def load_factory(target: str) -> Factory:
    """The callable a candidate names, checked once: importable, callable, 4 arguments."""
    if target not in _LOADED:
        try:
            _LOADED[target] = _load(target)
        except FactoryProblem as exc:
            _LOADED[target] = exc
    found = _LOADED[target]
    if isinstance(found, FactoryProblem):
        raise found
    return found


def _load(target: str) -> Factory:
    if target.startswith("library:"):
        made = _libraries().factory(target.removeprefix("library:"))
        if made is None:
            raise FactoryProblem(f"library call {target!r} cannot run on this host")
        return made  # type: ignore[no-any-return]
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module: any error importing it is theirs
        raise FactoryProblem(
            f"server factory {target!r}: module {module_name!r} is not importable: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    func: Any = module
    for piece in attr.split("."):
        func = getattr(func, piece, None)
        if func is None:
            raise FactoryProblem(
                f"server factory {target!r}: {module_name!r} has no attribute {attr!r}"
            )
    if not callable(func):
        raise FactoryProblem(f"server factory {target!r} is not callable")
    try:
        inspect.signature(func).bind("inet", "stream", "127.0.0.1", 1)
    except TypeError as exc:
        raise FactoryProblem(
            f"server factory {target!r} has the wrong signature: it must accept "
            f"(family, type, address, port), e.g. ('inet', 'stream', '127.0.0.1', 8080): {exc}"
        ) from None
    except ValueError:
        pass  # no signature to inspect (a builtin): the call will tell
    return func  # type: ignore[no-any-return]


def make(target: str, family: str, kind: str, address: str, port: int) -> socket.socket:
    """Call the factory; OSError passes through (an outcome, e.g. EADDRINUSE), anything
    else is the factory's problem, said without the plugin's traceback."""
    func = load_factory(target)
    try:
        made = func(family, kind, address, port)
    except OSError:
        raise
    except Exception as exc:
        raise FactoryProblem(
            f"server factory {target!r} raised {type(exc).__name__}: {exc} "
            f"(called with {family!r}, {kind!r}, {address!r}, {port})"
        ) from None
    if not isinstance(made, socket.socket):
        raise FactoryProblem(
            f"server factory {target!r} returned {type(made).__name__} "
            f"{made!r:.80}, not a socket.socket"
        )
    if made.getsockname()[1] != port:
        made.close()
        raise FactoryProblem(
            f"server factory {target!r} returned a socket not bound to port {port} "
            f"(called with {family!r}, {kind!r}, {address!r}, {port}): it must bind"
        )
    return made


def read_options(sock: socket.socket) -> dict[str, Any]:
    """What a factory really set: the reuse options and IPV6_V6ONLY, read back."""
    found: list[str] = []
    for name in OPTION_NAMES:
        value = getattr(socket, name, None)
        if value is None:
            continue
        try:
            if sock.getsockopt(socket.SOL_SOCKET, value):
                found.append(name)
        except OSError:
            continue
    out: dict[str, Any] = {"options": found}
    if sock.family == getattr(socket, "AF_INET6", None):
        with contextlib.suppress(OSError):
            out["v6only"] = bool(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
    with contextlib.suppress(OSError, AttributeError):
        out["listening"] = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    return out


# -- library profiles (pytest_bindconform.libraries, optional) ------------------


def library_candidates(profiles: list[Any], os_family: str) -> list[Candidate]:
    """Every library profile as a candidate: its real call on this host where the
    libraries package can make it (basis 'called'), else its cited options here."""
    libraries = _libraries()
    out = []
    for p in profiles:
        library = {"name": p.name, "version": p.version, "source": p.source}
        if libraries.factory(p.id) is not None:
            out.append(
                Candidate(
                    f"lib.{p.id}",
                    p.call,
                    (),
                    None,
                    f"library:{p.id}",
                    "library",
                    {**library, "basis": "called", "profile": p.id, "transport": p.transport},
                )
            )
            continue
        if os_family not in p.options:
            continue  # the profile says nothing of this OS: no candidate to judge
        out.append(
            Candidate(
                f"lib.{p.id}",
                p.call,
                tuple(p.options[os_family]),
                p.v6only.get(os_family),
                "",
                "library",
                {**library, "basis": p.basis, "profile": p.id, "transport": p.transport},
            )
        )
    return out


def profiles() -> list[Any]:
    """The library profiles, or none where the package is absent."""
    try:
        return list(_libraries().profiles())
    except ImportError:
        return []


def _libraries() -> Any:
    """pytest_bindconform.libraries, imported only when a library is asked about."""
    return importlib.import_module("pytest_bindconform.libraries")
