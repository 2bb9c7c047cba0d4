"""Redis for tests of shared state: the machine's Redis at 127.0.0.1:6379 under a unique key prefix (its
keys removed afterwards), or a private redis-server on a free port that a test may stop and start.
The fixtures are registered in tests/conftest.py."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.ports import free_port

SHARED_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own; every key under it is deleted when the test ends."""
    value = f"test:{uuid.uuid4().hex[:12]}:"
    yield value
    client = aioredis.Redis.from_url(SHARED_URL)
    keys = [k async for k in client.scan_iter(match=f"{value}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


class PrivateRedis:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()  # below the ephemeral range: see tests/ports.py
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, persist: bool = False) -> None:
        """Start it; ``persist``: with an append-only file synced on every write (what it had comes back
        after a crash), else nothing kept (a restart starts empty)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (it is on this machine kind)")
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if persist else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *aof, "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing saved beyond what was already synced."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def freeze(self, frozen: bool) -> None:
        """SIGSTOP / SIGCONT: a Redis stalled (a long fork, a swap storm), sockets open, commands waiting."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()
