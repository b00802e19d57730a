"""A real uvicorn server on 127.0.0.1, started by the tests as a separate process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from feedback_api import KeyStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_upstreams(*modes: str) -> Iterator[list[str]]:
    """OpenAI-compatible upstream processes (tests/feedback_api/upstream.py), one per mode
    (``ok``, ``slow``, ``fail``, ``ratelimit``), as base URLs once they answer."""
    script = str(Path(__file__).with_name("upstream.py"))
    procs, urls = [], []
    try:
        for mode in modes:
            port = free_port()
            procs.append(subprocess.Popen([sys.executable, script, str(port), mode]))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        for url in urls:
            while True:
                try:
                    httpx.get(f"{url}/calls", timeout=1)
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, "an upstream did not start"
                    time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@dataclass
class Server:
    url: str
    database_url: str
    admin_key: str
    client_key: str
    other_client_key: str
    revoked_key: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    log_level: str = "warning"

    def start(self, timeout: float = 120.0, *, port_tries: int = 3) -> None:
        """Start the server and wait until it is ready. The port was free when it was picked
        (free_port), but another process may take it before the server binds it: then the
        server starts again on a fresh port, and ``url`` changes to it."""
        exe = os.path.join(os.path.dirname(sys.executable), "bandit-router")
        assert self.log is not None
        deadline = time.time() + timeout
        output = ""
        for attempt in range(port_tries):
            if attempt:
                self.url = f"http://127.0.0.1:{free_port()}"
            port = self.url.rsplit(":", 1)[1]
            offset = self.log.stat().st_size if self.log.exists() else 0
            with open(self.log, "ab") as out:
                self.proc = subprocess.Popen([exe, "serve", "--port", port, "--log-level",
                                              self.log_level], env=self.env, stdout=out,
                                             stderr=subprocess.STDOUT)
            if self._wait_ready(deadline):
                return
            with open(self.log, "rb") as fh:
                fh.seek(offset)
                output = fh.read().decode(errors="replace")
            self.proc = None
            if "address already in use" not in output.lower():
                raise RuntimeError(f"server exited: {output[-3000:]}")
        raise RuntimeError(f"no free port after {port_tries} tries: {output[-3000:]}")

    def _wait_ready(self, deadline: float) -> bool:
        """True once this server is ready (/readyz answers 200, and this server's admin key
        is accepted, so it is not another server on a port taken meanwhile); False if it
        exited first."""
        assert self.proc is not None and self.log is not None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if (httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
                        and httpx.get(f"{self.url}/v1/stats", timeout=10, headers={
                            "Authorization": f"Bearer {self.admin_key}"}).status_code == 200):
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"server not ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: lifespan learns and checkpoints
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def make_server(tmp: Path, database_url: str | None = None, **env_overrides: str) -> Server:
    db = database_url or f"sqlite:///{tmp / 'service.db'}"
    keys = KeyStore(db)
    admin = keys.create(name="ops", scope="admin")[1]
    client = keys.create(name="app", scope="client")[1]
    other = keys.create(name="other app", scope="client")[1]
    revoked_key, revoked = keys.create(name="old", scope="admin")
    keys.revoke(revoked_key.id)
    keys.close()
    env = {**os.environ, "BANDIT_ROUTER_DATABASE_URL": db,
           "BANDIT_ROUTER_LEARN_INTERVAL_S": "0.2", "BANDIT_ROUTER_MAX_BODY_BYTES": "65536",
           # keys trusted briefly: a test that revokes through another process waits it out
           "BANDIT_ROUTER_KEY_CACHE_S": "0.05", **env_overrides}
    env.pop("BANDIT_ROUTER_CONFIG_FILE", None)
    server = Server(url=f"http://127.0.0.1:{free_port()}", database_url=db, admin_key=admin,
                    client_key=client, other_client_key=other, revoked_key=revoked, env=env,
                    log=tmp / "server.log")
    return server


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server with the real MiniLM embedder, shared by the service tests."""
    srv = make_server(tmp_path_factory.mktemp("service"))
    srv.start()
    yield srv
    srv.stop()
