"""The standard library's own listener calls, run for real on this host.

Each factory is ``factory(family, type, address, port) -> socket.socket`` with the case
vocabulary (family "inet"/"inet6", type "stream"/"dgram") and returns the bound socket the
library made, as its code makes it: the options on it are the library's, not ours. Event
loop calls run on a private loop that is closed before returning; the socket handed back
is a duplicate, so it outlives the loop and the server object.
"""

from __future__ import annotations

import asyncio
import http.server
import socket
import socketserver
from collections.abc import Callable

from ..ops import FAMILIES
from .loader import profiles

Factory = Callable[[str, str, str, int], socket.socket]


def _need(kind: str, wanted: str, profile: str) -> None:
    if kind != wanted:
        raise ValueError(f"{profile} makes {wanted} sockets only, not {kind!r}")


def _family(family: str) -> int:
    if family not in FAMILIES:
        raise ValueError(f"family {family!r} is not one of {', '.join(FAMILIES)}")
    return FAMILIES[family]


def _server_class(base: type[socketserver.TCPServer], family: str) -> type[socketserver.TCPServer]:
    # socketserver picks the family from a class attribute: a subclass is how users get IPv6
    attrs: dict[str, object] = {"address_family": _family(family)}
    if issubclass(base, http.server.HTTPServer):
        # HTTPServer.server_bind adds only socket.getfqdn(host) after TCPServer.server_bind
        # (which sets the options and binds): skipping it keeps a name lookup off the network
        attrs["server_bind"] = socketserver.TCPServer.server_bind
    return type(f"_{base.__name__}", (base,), attrs)


def _socketserver(base: type[socketserver.TCPServer], kind: str) -> Factory:
    def make(family: str, type: str, address: str, port: int) -> socket.socket:
        _need(type, kind, base.__name__)
        server = _server_class(base, family)((address, port), socketserver.BaseRequestHandler)
        return server.socket

    return make


def _create_server(family: str, type: str, address: str, port: int) -> socket.socket:
    _need(type, "stream", "socket.create_server")
    return socket.create_server((address, port), family=_family(family))


def _detach(sock: socket.socket) -> socket.socket:
    """A blocking duplicate of a loop's socket that stays open after the loop closes it."""
    dup = socket.fromfd(sock.fileno(), sock.family, sock.type, sock.proto)
    dup.setblocking(True)
    return dup


def _asyncio_server(family: str, type: str, address: str, port: int) -> socket.socket:
    _need(type, "stream", "loop.create_server")
    loop = asyncio.new_event_loop()
    try:
        server = loop.run_until_complete(
            # start_serving (the default) is what calls listen(); the dup keeps listening
            loop.create_server(asyncio.Protocol, address, port, family=_family(family))
        )
        try:
            return _detach(server.sockets[0])
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
    finally:
        loop.close()


def _asyncio_datagram(family: str, type: str, address: str, port: int) -> socket.socket:
    _need(type, "dgram", "loop.create_datagram_endpoint")
    loop = asyncio.new_event_loop()
    try:
        transport, _ = loop.run_until_complete(
            loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=(address, port), family=_family(family)
            )
        )
        try:
            return _detach(transport.get_extra_info("socket"))
        finally:
            transport.close()
            loop.run_until_complete(asyncio.sleep(0))  # let the close callback run
    finally:
        loop.close()


FACTORIES: dict[str, Factory] = {
    "socket.create_server": _create_server,
    "socketserver.TCPServer": _socketserver(socketserver.TCPServer, "stream"),
    "socketserver.UDPServer": _socketserver(socketserver.UDPServer, "dgram"),
    "http.server.HTTPServer": _socketserver(http.server.HTTPServer, "stream"),
    "http.server.ThreadingHTTPServer": _socketserver(http.server.ThreadingHTTPServer, "stream"),
    "asyncio.create_server": _asyncio_server,
    "asyncio.create_datagram_endpoint": _asyncio_datagram,
}


def factory(profile_id: str) -> Factory | None:
    """The real call behind a profile on this host, or None (not the standard library)."""
    for profile in profiles():
        if profile.id == profile_id:
            return FACTORIES.get(profile.factory) if profile.factory else None
    return None
