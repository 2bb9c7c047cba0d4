"""Real processes on real ports: `router emulate` upstreams and `router serve`, stopped after each test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.ports import free_port as free_port  # re-exported: the tests here import it from this module

Spawn = Callable[..., "Proc"]


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.handle = log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "router", *args],
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.handle.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self.handle.close()


def wait_http(url: str, proc: Proc, timeout_s: float = 60.0, status: int = 200) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(f"process exited early:\n{proc.output()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == status:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready in {timeout_s}s:\n{proc.output()}")


def spawner(tmp: Path, procs: list[Proc]) -> Spawn:
    """Starts `router` subcommands with their logs in ``tmp``, each added to ``procs`` (to stop them).
    Offline, and without the encoder (seconds and hundreds of MB per process) unless ``env`` asks for it."""

    def start(*args: str, env: dict[str, str] | None = None) -> Proc:
        base = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1", "ROUTER_CLASSIFIER": "false"}
        proc = Proc(list(args), {**os.environ, **base, **(env or {})}, tmp / f"proc-{len(procs)}.log")
        procs.append(proc)
        return proc

    return start


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    procs: list[Proc] = []
    yield spawner(tmp_path, procs)
    for proc in procs:
        proc.stop()
