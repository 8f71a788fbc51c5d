"""Real parts for fault tests: gunicorn serving the test database, a throwaway Redis, and a TCP
proxy in front of PostgreSQL that can be cut and restored."""

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)
HTTP_TIMEOUT = 30  # seconds: a request that takes longer counts as hung


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {seconds} s")


def database_url(*, port: int | None = None) -> str:
    """The test database's URL, optionally through another port on loopback (a proxy)."""
    params = connection.settings_dict
    host, real_port = params["HOST"] or "127.0.0.1", params["PORT"] or 5432
    if port is not None:
        host, real_port = "127.0.0.1", port
    return f"postgres://{params['USER']}@{host}:{real_port}/{params['NAME']}"


class RedisServer:
    """A redis-server of the test's own, on a free port, without persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (the machine's redis-server, our arguments)
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],  # noqa: S607
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, seconds=10, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class TcpProxy:
    """Forwards loopback connections to `upstream` until cut.

    Cut, it closes every connection it carries (as a restarting server does) and holds new
    ones open without answering (as an unreachable host does), so that clients must rely on
    their own timeouts. Restored, it forwards new connections again.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.forwarding = True
        self.stopped = False
        self.sockets: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.sockets.append(client)
                if not self.forwarding:
                    continue  # held: accepted, never answered
                server = socket.create_connection(self.upstream)
                self.sockets.append(server)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def _close_all(self) -> None:
        for end in self.sockets:
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()
        self.sockets = []

    def cut(self) -> None:
        with self.lock:
            self.forwarding = False
            self._close_all()

    def restore(self) -> None:
        with self.lock:
            self._close_all()  # the connections held while cut
            self.forwarding = True

    def stop(self) -> None:
        self.stopped = True
        self.thread.join(timeout=5)
        self.listener.close()
        with self.lock:
            self._close_all()


class LiveServer:
    """gunicorn (2 sync workers) serving crm.wsgi on loopback, on the test database unless the
    given environment says otherwise."""

    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "crm.settings.base",
            "DEBUG": "false",
            "LOG_LEVEL": "ERROR",
            "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": database_url(),
            **env,
        }
        command = [sys.executable, "-m", "gunicorn", "crm.wsgi:application", "--bind", f"127.0.0.1:{self.port}"]
        command += ["--workers", "2", "--timeout", "120", "--graceful-timeout", "5"]
        self.process = subprocess.Popen(command, env=environment, cwd=ROOT, start_new_session=True)  # noqa: S603

    def wait_ready(self) -> None:
        wait_until(self._answers, seconds=60, what=f"gunicorn on port {self.port}")

    def _answers(self) -> bool:
        try:
            requests.get(f"{self.url}/healthz", timeout=HTTP_TIMEOUT)
        except requests.ConnectionError:  # not listening yet
            return False
        return True

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.url}{path}", timeout=HTTP_TIMEOUT, allow_redirects=False, **kwargs)


@contextmanager
def live_server(**env: str) -> Iterator[LiveServer]:
    server = LiveServer(**env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
