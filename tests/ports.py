"""Ports for the servers tests start as processes."""

from __future__ import annotations

import functools
import random
import socket
from collections.abc import Iterator

LOW, HIGH = 20_000, 32_000


@functools.cache
def _candidates() -> Iterator[int]:
    """Every port of the range once, in a random order, for the whole test process: a port handed out is
    never handed out again, so servers chosen together (a test picks nine before starting any) cannot get
    the same one, which failed a run with "address already in use"."""
    ports = list(range(LOW, HIGH))
    random.Random().shuffle(ports)
    return iter(ports)


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range (32768-60999 here): a port the kernel hands out
    for port 0 can be taken again by any outgoing connection (the proxy's own, to its upstreams) before the
    process it was chosen for binds it, which failed a run with "address already in use"."""
    for port in _candidates():
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port left between {LOW} and {HIGH}")
