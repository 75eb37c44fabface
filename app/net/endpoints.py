"""Endpoint strings as a person writes them: checked before libzmq sees them.

libzmq is lenient in ways that hide mistakes: ``tcp://127.0.0.1:99999`` binds port 34463 (the
port wraps modulo 65536), an empty string is often replaced by a default further up, and its
own errors ("Invalid argument") do not say what is wrong. :func:`parse_endpoint` accepts exactly

- ``tcp://HOST:PORT``: HOST an IPv4 address, a bracketed IPv6 address (``[::1]``) or a host
  name; PORT 1..65535. An endpoint to *bind* may also use port ``0`` or ``*`` (any free port;
  the server reports the one it got) and host ``*`` (every interface);
- ``ipc://PATH``: a Unix socket path (at most 107 bytes, the kernel's limit), or ``@NAME`` in
  the abstract namespace;
- ``inproc://NAME`` only where the caller allows it (tests, in-process wiring).

Every refusal is one short sentence naming the endpoint and what to write instead.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MAX_TEXT = 200
"""Longest endpoint echoed back in a message (longer input is cut)."""
IPC_PATH_MAX = 107
"""sun_path holds 108 bytes on Linux, one of them the terminating NUL."""
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
_FORMS = "tcp://HOST:PORT or ipc://PATH"


class EndpointError(ValueError):
    """An endpoint string a person must fix; the message says what to write."""


@dataclass(frozen=True)
class Endpoint:
    """A checked endpoint. ``port`` None means any free port (``*``, bind only)."""

    transport: str
    host: str = ""
    """tcp: an IP address (IPv6 without brackets), a host name, or ``*`` (bind to every interface)."""
    port: int | None = None
    path: str = ""
    """ipc: the socket path (``@NAME``: abstract namespace); inproc: the name."""

    def __str__(self) -> str:
        if self.transport != "tcp":
            return f"{self.transport}://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{'*' if self.port is None else self.port}"


def _shown(text: str) -> str:
    return repr(text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…")


def parse_endpoint(text: str, *, bind: bool, allow_inproc: bool = False) -> Endpoint:
    """Check ``text`` as an endpoint to bind (``bind=True``) or connect to; raise :class:`EndpointError`."""
    if not isinstance(text, str):
        raise EndpointError(f"an endpoint must be text like {_FORMS}, got {type(text).__name__}")
    if not text.strip():
        raise EndpointError(f"the endpoint is empty: give {_FORMS}")
    if text != text.strip() or any(c.isspace() or not c.isprintable() for c in text):
        raise EndpointError(f"endpoint {_shown(text)} contains spaces or control characters: give {_FORMS}")
    transport, sep, rest = text.partition("://")
    if not sep or transport not in ("tcp", "ipc", "inproc") or (transport == "inproc" and not allow_inproc):
        raise EndpointError(f"endpoint {_shown(text)} must look like {_FORMS}")
    if transport == "tcp":
        host, port = _tcp(text, rest, bind)
        return Endpoint("tcp", host=host, port=port)
    if not rest:
        raise EndpointError(f"endpoint {_shown(text)} names no {'path' if transport == 'ipc' else 'name'}")
    if transport == "ipc" and len(rest.encode()) > IPC_PATH_MAX:
        raise EndpointError(
            f"endpoint {_shown(text)}: an ipc path may be at most {IPC_PATH_MAX} bytes "
            f"(this one is {len(rest.encode())}): use a shorter path"
        )
    return Endpoint(transport, path=rest)


def check_endpoint(text: str, *, bind: bool, allow_inproc: bool = False) -> str:
    """``text`` if it is a valid endpoint (see :func:`parse_endpoint`), else :class:`EndpointError`."""
    parse_endpoint(text, bind=bind, allow_inproc=allow_inproc)
    return text


def _tcp(text: str, rest: str, bind: bool) -> tuple[str, int | None]:
    host, sep, port_text = rest.rpartition(":")
    if not sep or not host:
        raise EndpointError(f"endpoint {_shown(text)} needs a host and a port, like tcp://127.0.0.1:5555")
    return _host(text, host, bind), _port(text, port_text, bind)


def _host(text: str, host: str, bind: bool) -> str:
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise EndpointError(f"endpoint {_shown(text)}: {_shown(host)} is not an IPv6 address") from None
    if ":" in host:
        raise EndpointError(
            f"endpoint {_shown(text)}: write an IPv6 address in brackets, like tcp://[::1]:5555"
        )
    if host == "*":
        if not bind:
            raise EndpointError(
                f"endpoint {_shown(text)}: '*' binds every interface; to connect, name a host"
            )
        return host
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise EndpointError(f"endpoint {_shown(text)}: {_shown(host)} is not an IPv4 address") from None
    if not _HOSTNAME.match(host):
        raise EndpointError(f"endpoint {_shown(text)}: {_shown(host)} is not a valid host name or address")
    return host


def _port(text: str, port: str, bind: bool) -> int | None:
    any_port = "0 or * for any free port"
    if bind and port == "*":
        return None
    if not port.isdigit() or not port.isascii():
        extra = f", or {any_port}" if bind else ""
        raise EndpointError(f"endpoint {_shown(text)}: the port must be a number 1..65535{extra}")
    n = int(port) if len(port) <= 6 else 10**6  # (a long run of digits is out of range too)
    if n == 0 and bind:
        return None
    if not 1 <= n <= 65535:
        extra = f", or {any_port}" if bind else ""
        raise EndpointError(
            f"endpoint {_shown(text)}: port {_shown(port)[1:-1]} is out of range: use 1..65535{extra}"
        )
    return n
