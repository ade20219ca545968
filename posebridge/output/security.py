"""ZeroMQ CURVE security for non-local use: encrypted sockets that only authorised clients can join.

`posebridge keys DIR` makes a key folder (pyzmq's certificate format):

    DIR/server.key, DIR/server.key_secret     the daemon's key pair (keep server.key_secret private)
    DIR/client.key, DIR/client.key_secret     one client's key pair (copy both + server.key to the client)
    DIR/authorized/client.key                 public keys of clients allowed to connect

The daemon (`[security] keys = "DIR"`) makes its PUB and control sockets CURVE servers and starts
pyzmq's authenticator, which admits only the public keys in DIR/authorized. A client (`posebridge
listen --keys DIR`, the control `request`) uses its key pair and the server's public key. Without keys
everything is plain TCP: anyone who can reach the ports can read the stream and change the filter, so
the defaults bind 127.0.0.1 (docs/daemon.md, "Security"). The Unity client speaks plain ZMTP only.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq

from posebridge.errors import ConfigError, InputFileError


@dataclass(frozen=True)
class CurveKeys:
    """One side's CURVE keys: its own key pair and the server's public key (the server's own for the
    server side), plus the authorised-clients folder on the server side."""

    public: bytes
    secret: bytes
    server_public: bytes
    authorized: Path | None = None


def generate_keys(folder: str | os.PathLike, clients: int = 1, overwrite: bool = False) -> list[Path]:
    """Create the key folder (see the module docstring); returns the files written."""
    import zmq.auth

    folder = Path(folder)
    if (folder / "server.key_secret").exists() and not overwrite:
        raise InputFileError(folder, "already holds keys (server.key_secret); --overwrite replaces them")
    folder.mkdir(parents=True, exist_ok=True)
    authorized = folder / "authorized"
    authorized.mkdir(exist_ok=True)
    written = list(zmq.auth.create_certificates(str(folder), "server"))
    for i in range(clients):
        name = "client" if clients == 1 else f"client{i + 1}"
        public, secret = zmq.auth.create_certificates(str(folder), name)
        shutil.copy(public, authorized / Path(public).name)
        written += [Path(public), Path(secret), authorized / Path(public).name]
    for path in folder.glob("*.key_secret"):
        path.chmod(0o600)
    return [Path(p) for p in written]


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth

    if not path.is_file():
        raise InputFileError(path, "key file not found (make a key folder with `posebridge keys DIR`)")
    try:
        public, private = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as exc:
        raise InputFileError(path, f"not a ZeroMQ certificate ({exc})") from None
    if secret and not private:
        raise InputFileError(path, "has no secret key")
    return public, private


def load_server(folder: str | os.PathLike) -> CurveKeys:
    folder = Path(folder)
    public, secret = _load(folder / "server.key_secret", secret=True)
    authorized = folder / "authorized"
    if not authorized.is_dir():
        raise InputFileError(authorized, "no authorised-clients folder (make keys: `posebridge keys DIR`)")
    return CurveKeys(public, secret or b"", public, authorized)


def load_client(folder: str | os.PathLike, name: str = "client") -> CurveKeys:
    folder = Path(folder)
    public, secret = _load(folder / f"{name}.key_secret", secret=True)
    server_public, _ = _load(folder / "server.key", secret=False)
    return CurveKeys(public, secret or b"", server_public)


_authenticators: dict[int, object] = {}


def apply_server(sock: zmq.Socket, keys: CurveKeys) -> None:
    """Make `sock` a CURVE server admitting only the authorised client keys."""
    if keys.authorized is None:
        raise ConfigError("security.keys: server keys need an authorised-clients folder")
    ctx = sock.context
    auth = _authenticators.get(id(ctx))
    if auth is None:  # one authenticator thread per context; the latest key folder configures it
        from zmq.auth.thread import ThreadAuthenticator

        auth = ThreadAuthenticator(ctx)
        auth.start()
        _authenticators[id(ctx)] = auth
    auth.configure_curve(domain="*", location=str(keys.authorized))  # type: ignore[attr-defined]
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_server = True


def stop_authenticator(ctx: zmq.Context) -> None:
    """Stop the authenticator thread of `ctx` (before `ctx.term()`, which would wait for it)."""
    auth = _authenticators.pop(id(ctx), None)
    if auth is not None:
        auth.stop()  # type: ignore[attr-defined]


def apply_client(sock: zmq.Socket, keys: CurveKeys) -> None:
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_serverkey = keys.server_public
