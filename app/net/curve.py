"""CURVE keys for ZeroMQ endpoints that other machines may reach.

Endpoints bind to loopback by default. An endpoint bound to any other address must be
encrypted and authenticated with CURVE: the server has a key pair and an allow-list of client
public keys, checked by a ZAP authenticator (``zmq.auth.thread.ThreadAuthenticator``); a client
needs its own key pair and the server's public key. A client that is not on the allow-list (or
has no keys at all) is refused during the handshake: it never gets a reply.

Key files are Z85 text, one key per file: ``NAME.key`` holds the public key and
``NAME.key_secret`` the secret key. Both are written with 0600 permissions, and a secret key
file that group or others can read is refused when loaded (as ssh does). Paths may start with
``~``. The public key is derived from the secret key, so a secret key file is all an endpoint
needs of its own.
"""

from __future__ import annotations

import os
import stat
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth.thread

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
_Z85_KEY_LEN = 40
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class CurveKeyError(ValueError):
    """A key file that is missing, malformed or too widely readable; the message says which."""


def is_loopback(endpoint: str) -> bool:
    """True for ``ipc://``/``inproc://`` and for ``tcp://`` on a loopback address."""
    if not endpoint.startswith("tcp://"):
        return endpoint.startswith(("ipc://", "inproc://"))
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    return host in LOOPBACK_HOSTS


def generate_keypair(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` and ``NAME.key_secret`` (0600) in ``directory``; return both paths.

    Refuses to overwrite existing files, so a deployed key is never replaced by accident.
    """
    if not name or "/" in name or name.startswith("."):
        raise CurveKeyError(f"key name {name!r} must be a plain file name")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.curve_keypair()
    paths = (folder / f"{name}{PUBLIC_SUFFIX}", folder / f"{name}{SECRET_SUFFIX}")
    for path in paths:
        if path.exists():
            raise CurveKeyError(f"{path} already exists; remove it first to make a new key")
    for path, key in zip(paths, (public, secret), strict=True):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key.decode("ascii") + "\n")
    return paths


def _read_key(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise CurveKeyError(f"{what} file {path} does not exist")
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if len(text) != _Z85_KEY_LEN:
        raise CurveKeyError(f"{what} file {path} must hold one {_Z85_KEY_LEN}-character Z85 key")
    try:
        zmq.utils.z85.decode(text)
    except (ValueError, KeyError, IndexError) as exc:
        raise CurveKeyError(f"{what} file {path} is not valid Z85: {exc}") from exc
    return text.encode("ascii")


def load_public_key(path: str | os.PathLike[str]) -> bytes:
    """A Z85 public key from a ``.key`` file."""
    return _read_key(Path(path).expanduser(), "public key")


def load_secret_key(path: str | os.PathLike[str]) -> bytes:
    """A Z85 secret key from a ``.key_secret`` file that only its owner can read."""
    p = Path(path).expanduser()
    if p.is_file() and p.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CurveKeyError(f"secret key file {p} is readable by others; run: chmod 600 {p}")
    return _read_key(p, "secret key")


def load_allowed_keys(paths: tuple[str, ...]) -> frozenset[bytes]:
    """Client public keys from files, or from every ``*.key`` file in a directory."""
    keys: set[bytes] = set()
    for entry in paths:
        p = Path(entry).expanduser()
        files = sorted(p.glob(f"*{PUBLIC_SUFFIX}")) if p.is_dir() else [p]
        keys.update(load_public_key(f) for f in files)
    if not keys:
        raise CurveKeyError(f"no client public keys found in {list(paths)}")
    return frozenset(keys)


@dataclass(frozen=True)
class ServerKeys:
    """What a CURVE server needs: its secret key and the client public keys it accepts."""

    secret: bytes
    allowed_clients: frozenset[bytes]

    @property
    def public(self) -> bytes:
        return zmq.curve_public(self.secret)

    @classmethod
    def load(cls, secret_file: str, allowed: tuple[str, ...]) -> ServerKeys:
        return cls(load_secret_key(secret_file), load_allowed_keys(allowed))


@dataclass(frozen=True)
class ClientKeys:
    """What a CURVE client needs: its own secret key and the server's public key."""

    secret: bytes
    server_public: bytes

    @property
    def public(self) -> bytes:
        return zmq.curve_public(self.secret)

    @classmethod
    def load(cls, secret_file: str, server_public_file: str) -> ClientKeys:
        return cls(load_secret_key(secret_file), load_public_key(server_public_file))


class _AllowList:
    """ZAP credentials provider: accept exactly the listed client public keys."""

    def __init__(self, keys: frozenset[bytes]) -> None:
        self._keys = keys

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self._keys


def start_authenticator(
    ctx: zmq.Context[zmq.Socket[bytes]], keys: ServerKeys
) -> zmq.auth.thread.ThreadAuthenticator:
    """Start the ZAP handler for ``ctx``; stop it (``.stop()``) before terminating the context."""
    auth = zmq.auth.thread.ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve_callback(domain="*", credentials_provider=_AllowList(keys.allowed_clients))
    return auth


def make_server(sock: zmq.Socket[bytes], keys: ServerKeys) -> None:
    """Make ``sock`` (before bind) a CURVE server."""
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SERVER, 1)


def make_client(sock: zmq.Socket[bytes], keys: ClientKeys) -> None:
    """Make ``sock`` (before connect) a CURVE client of the server whose public key it holds."""
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SERVERKEY, keys.server_public)


def check_bind_policy(endpoint: str, allow_remote: bool, has_keys: bool) -> None:
    """Refuse a non-loopback endpoint unless remote serving is allowed and CURVE keys are set.
    ``ipc://`` and ``inproc://`` endpoints are local."""
    if not endpoint.startswith(("tcp://", "ipc://", "inproc://")):
        raise ValueError(f"endpoint {endpoint!r} must start with tcp://, ipc:// or inproc://")
    if is_loopback(endpoint):
        return
    if not allow_remote:
        raise ValueError(
            f"endpoint {endpoint!r} is not on loopback; allow remote serving "
            "(--allow-remote, allow_remote = true) to serve other hosts"
        )
    if not has_keys:
        raise ValueError(
            f"endpoint {endpoint!r} is not on loopback: it needs CURVE keys "
            "(a server secret key and the allowed client public keys)"
        )


def check_server_security(
    endpoints: tuple[str, ...], allow_remote: bool, secret_key: str, allowed_clients: tuple[str, ...]
) -> None:
    """What every server's configuration checks: CURVE keys come as a pair (a secret key and at
    least one allowed client), and each endpoint keeps to :func:`check_bind_policy`."""
    if bool(secret_key) != bool(allowed_clients):
        raise ValueError("CURVE needs both a server secret key and at least one allowed client key")
    for endpoint in endpoints:
        check_bind_policy(endpoint, allow_remote, bool(secret_key))


def load_server_keys(secret_key: str, allowed_clients: tuple[str, ...]) -> ServerKeys | None:
    """The server's CURVE keys, or None when CURVE is off (no secret key configured)."""
    return ServerKeys.load(secret_key, allowed_clients) if secret_key else None
