"""Faults to inject: a Redis server of the test's own that can be restarted, a TCP proxy that can be cut.

Used by ``test_fault_recovery.py`` and ``benchmarks/fault_injection.py``. Neither touches the
machine's Redis on 6379 or its PostgreSQL: the Redis runs on a spare port with its data under a
temporary directory, and the proxy sits between the workers and PostgreSQL, so cutting it
makes the database unreachable for the workers only (the test still reads the rows directly).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import subprocess
import threading
import time
from pathlib import Path


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, interval: float = 0.1, what: str = "condition") -> float:
    """Poll ``condition()`` until it is true; returns the seconds it took, raises TimeoutError after ``timeout``."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} not reached in {timeout} s")
        time.sleep(interval)


class RedisServer:
    """``redis-server`` on a spare port, AOF on (``appendfsync everysec``), as the README runs it."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.port = port or spare_port()
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20) -> RedisServer:
        log = (self.data_dir / "redis.log").open("ab")
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "daemonize": "no",
            "dir": str(self.data_dir),
            "save": "",
            "appendonly": "yes",
            "appendfsync": "everysec",
        }
        self.proc = subprocess.Popen(
            ["redis-server", *(arg for name, value in options.items() for arg in (f"--{name}", value))],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self.answers, timeout, what=f"redis on :{self.port}")
        return self

    def answers(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.exceptions.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill does (no final AOF rewrite; everysec loses at most ~1 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class TcpProxy:
    """A TCP proxy to ``upstream`` on a spare port; ``cut()`` drops every connection and refuses new ones.

    One thread and a selector; good for a handful of database connections, not for throughput.
    """

    def __init__(self, upstream: tuple[str, int], port: int | None = None) -> None:
        self.upstream = upstream
        self.port = port or spare_port()
        self._sel = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self._open_listener()
        self._thread.start()

    def _open_listener(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.setblocking(False)
        with self._lock:
            self._listener = listener
            self._sel.register(listener, selectors.EVENT_READ)

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    def cut(self) -> None:
        """Connection refused from now on; every open connection reset."""
        with self._lock:
            listener, self._listener = self._listener, None
            socks = list(self._pairs)
            self._pairs.clear()
            if listener is not None:
                self._sel.unregister(listener)
                listener.close()
            for sock in socks:
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(sock)
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()

    def restore(self) -> None:
        if self._listener is None:
            self._open_listener()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                idle = not self._sel.get_map()
            if idle:
                time.sleep(0.05)
                continue
            try:
                ready = self._sel.select(timeout=0.1)
            except (OSError, ValueError):
                continue
            for key, _mask in ready:
                with self._lock:
                    self._handle(key.fileobj)

    def _handle(self, sock: socket.socket) -> None:
        if sock is self._listener:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                return
            for end in (client, server):
                end.setblocking(True)
                end.settimeout(5)
                self._sel.register(end, selectors.EVENT_READ)
            self._pairs[client] = server
            self._pairs[server] = client
            return
        peer = self._pairs.get(sock)
        if peer is None:
            return
        try:
            data = sock.recv(65536)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        for end in (sock, peer):
            self._pairs.pop(end, None)
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(end)
            end.close()
