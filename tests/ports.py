"""Ports for the servers tests start as processes."""

from __future__ import annotations

import random
import socket


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range (32768-60999 here): a port the kernel hands out
    for port 0 can be taken again by any outgoing connection (the proxy's own, to its upstreams) before the
    process it was chosen for binds it, which failed a run with "address already in use"."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")
