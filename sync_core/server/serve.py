"""Running the Mustering server: import if new, bind, announce, serve until SIGTERM.

The socket is bound and listening only after the import has committed (docs/architecture.md,
'Stores and processes'). Once listening, one JSON line ``{"url": ..., "server_id": ...}`` goes to
stdout so a parent process (tests, ``muster demo``, the benchmark) learns the port when it
asked for port 0. uvicorn handles SIGTERM: it stops accepting, finishes requests, and the
app's lifespan closes the store.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import uvicorn

from sync_core.allocator import return_large_blocks
from sync_core.server.app import create_app
from sync_core.server.changes import prune_tombstones
from sync_core.server.log_scrub import withhold_messages
from sync_core.server.sign_in import SignInLimits
from sync_core.server.store import ServerStore, open_server_store

log = logging.getLogger(__name__)
# Tombstones outlive the device retention window (10 days) plus a margin (docs/architecture.md,
# 'Deletes travel as tombstones'): a device unused for longer is wiped anyway and needs a full sync.
TOMBSTONE_DAYS = 15
DEFAULT_TOKEN_LIFETIME = 12 * 3600.0

# Connections the kernel may hold before the server accepts them: at the alarm every
# handheld connects within the same second, and a full queue drops a connection attempt
# (the device then waits for TCP's retry, 1 s or more).
LISTEN_BACKLOG = 1024


@dataclass(frozen=True)
class Tls:
    """The server's certificate chain and private key (PEM files) for HTTPS."""

    certfile: Path
    keyfile: Path


def open_store(data_dir: Path, db: str | Path, portraits: Path | None = None) -> ServerStore:
    """Open the server store ``db`` (a DuckDB file, or a ``postgresql://`` URL) with its
    portrait files in ``portraits`` (see :func:`open_server_store`), importing ``data_dir``
    when it is new, and drop tombstones older than ``TOMBSTONE_DAYS``.

    Raises ShipDataError for unusable ship data, StoreInUse when the file is held and
    StoreUnusable when the store cannot be opened.
    """
    store = open_server_store(db, portraits)
    if not store.imported:
        try:
            counts = store.import_ship(data_dir)
        except BaseException:
            store.close()
            raise
        log.info("imported %s from %s", counts, data_dir)
    horizon = prune_tombstones(store, datetime.now(UTC).replace(tzinfo=None) - timedelta(days=TOMBSTONE_DAYS))
    log.info("tombstone horizon: %s", horizon)
    return store


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one).

    The protocol is named explicitly: asyncio sets TCP_NODELAY on accepted connections only
    when ``sock.proto`` is IPPROTO_TCP, and without it every keep-alive answer waited ~40 ms
    for a delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    return sock


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """SIGTERM this process when its parent goes away (a ``muster demo`` killed with -9):
    a watchdog thread compares ``os.getppid()`` with the parent at start."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        log.warning("parent process %d is gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def use_system_pool() -> None:
    """Allocate Arrow's buffers from this process's malloc (Arrow's ``system`` pool), so a
    freed batch goes back to the system with the rest (:func:`~sync_core.allocator.return_large_blocks`):
    Arrow's default pool (mimalloc, or jemalloc) keeps freed buffers for reuse."""
    pa.set_memory_pool(pa.system_memory_pool())


def serve(
    data_dir: Path,
    db_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    with_parent: bool = False,
    sign_in_limits: SignInLimits | None = None,
    tls: Tls | None = None,
    api_docs: bool = False,
    token_lifetime: float = DEFAULT_TOKEN_LIFETIME,
    portraits: Path | None = None,
) -> None:
    """Serve ``db_path`` (a DuckDB file or a ``postgresql://`` URL, its portrait files in
    ``portraits``: :func:`open_server_store`; importing ``data_dir`` first when new) until
    SIGTERM / Ctrl-C;
    ``with_parent`` also stops it when the parent process dies (:func:`exit_with_parent`);
    ``sign_in_limits`` sizes the sign-in verification pool (``sign_in.py``); ``tls``
    serves HTTPS with that certificate; ``api_docs`` serves the API's documentation pages;
    access tokens last ``token_lifetime`` seconds.
    Raises OSError / ssl.SSLError for an unreadable certificate or key."""
    if with_parent:
        exit_with_parent()
    # Arrow's default pool kept the import's freed batches, and glibc kept blocks of a few MB
    # once its mmap threshold rose: so the server's peak stays near one batch (README, "Benchmark").
    use_system_pool()
    return_large_blocks()
    store = open_store(data_dir, db_path, portraits)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    app = create_app(store, sign_in_limits=sign_in_limits, api_docs=api_docs, token_lifetime=token_lifetime)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        ssl_certfile=tls.certfile if tls else None,
        ssl_keyfile=tls.keyfile if tls else None,
    )
    config.load()  # reads the certificate now: a bad one fails before the ready line
    withhold_messages(logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error"))
    scheme = "https" if tls else "http"
    url = f"{scheme}://{url_host}:{bound_port}"
    print(json.dumps({"url": url, "server_id": store.server_id}), flush=True)
    uvicorn.Server(config).run(sockets=[sock])
