"""The budget scripts' own cost: lone reserve-then-settle pairs (three counters, as the budgets bench
policy) against the machine's Redis, p50 of each step. Issue #15's figures in docs/performance.md.

    .venv/bin/python -m tests.perf.bench_leases [--pairs 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from router.accounting import budgets
from router.state.base import Ids, Lease
from router.state.redis import RedisStore


async def measure(pairs: int) -> tuple[float, float]:
    prefix = f"bench-leases:{uuid.uuid4().hex[:8]}:"
    store = RedisStore("redis://127.0.0.1:6379/0", prefix)
    far = int(time.time()) + 3600
    ids = Ids()
    reserve, settle = [], []
    try:
        for i in range(pairs):
            cs = (
                budgets.Counter(f"{prefix}b:d", 10**15, 1000, far, "d", "usd_per_day", far),
                budgets.Counter(f"{prefix}b:r", 10**9, 1, far, "r", "requests_per_minute", far),
                budgets.Counter(f"{prefix}b:t", 10**12, 300, far, "r", "tokens_per_minute", far),
            )
            id_, seq = ids.next()
            lease = Lease(id_, seq, cs, far)
            t0 = time.perf_counter()
            await store.reserve(lease)
            t1 = time.perf_counter()
            await store.settle(lease, budgets.finals(cs, budgets.Ask(500, 120), True))
            t2 = time.perf_counter()
            if i >= pairs // 10:  # warm-up left out
                reserve.append(t1 - t0)
                settle.append(t2 - t1)
    finally:
        keys = [k async for k in store.client.scan_iter(match=f"{prefix}*")]
        if keys:
            await store.client.delete(*keys)
        await store.close()
    return statistics.median(reserve), statistics.median(settle)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=3000)
    r, s = asyncio.run(measure(ap.parse_args().pairs))
    print(f"reserve p50 {r * 1000:.3f} ms, settle p50 {s * 1000:.3f} ms")


if __name__ == "__main__":
    main()
