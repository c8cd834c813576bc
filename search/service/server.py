"""Serve the app with uvicorn on the loopback interface only.

The socket is bound here (not by uvicorn) so that port 0 can pick a free port whose number goes into
the endpoint file before the first request can arrive, and so that a non-loopback host is refused
before anything listens.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from pathlib import Path

from viml.core.errors import UserFacingError
from viml.search.service.tokens import ensure_token, remove_endpoint, write_endpoint
from viml.search.service.work import ServiceLimits, Work

log = logging.getLogger("viml.service")

DEFAULT_PORT = 8765
KEEP_ALIVE_SECONDS = 5
MAX_CONNECTIONS = 32  # more at once are answered 503 by uvicorn


def loopback_address(host: str) -> str:
    """The address to bind for `host`; refuses anything but this machine's loopback."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise UserFacingError(
            f"viml serve listens on this machine only (127.0.0.1 or ::1), not on {host!r}: "
            "its clients are editor panels on the same computer"
        )
    return str(address)


def bind(host: str, port: int) -> socket.socket:
    address = loopback_address(host)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    # proto given: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP; with
    # proto 0 every response (headers and body written apart) waited ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError as error:
        sock.close()
        raise UserFacingError(
            f"cannot listen on {address}:{port} ({error.strerror or error}); is another `viml serve` "
            "running? choose another --port"
        ) from error
    return sock


def url_of(sock: socket.socket) -> str:
    address, port = sock.getsockname()[:2]
    return f"http://{'[' + address + ']' if ':' in address else address}:{port}"


def serve(
    catalog: Path,
    bundle,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    limits: ServiceLimits | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run the service until interrupted; `ready(url)` once it listens (the endpoint file is written)."""
    import uvicorn
    from viml.search.service.app import create_app

    sock = bind(host, port)  # refused hosts and busy ports stop here, before any model work
    work = Work(catalog, bundle, limits)
    embedded = work.prepare()
    if embedded:
        log.info("embedded %d tracks into the bundle's space", embedded)
    app = create_app(work, ensure_token())
    config = uvicorn.Config(
        app, log_level="warning", timeout_keep_alive=KEEP_ALIVE_SECONDS, limit_concurrency=MAX_CONNECTIONS,
        server_header=False, proxy_headers=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    url = url_of(sock)
    sock.listen(128)
    write_endpoint(url)
    try:
        if ready is not None:
            ready(url)
        server.run(sockets=[sock])
    finally:
        remove_endpoint()
        sock.close()
