"""Classifier benchmarks (prints numbers; no assertions): latency, throughput, RSS, start-up, batch CLI.

    .venv/bin/python tests/perf/bench_classifier.py [--quick]

0. the canary: the raw encoder as its package ships it, one short text at a time (this host's speed
   moves from day to day; read every other figure beside it);
1. in-process ClassifierRuntime with the real encoder: p50/p99 of one 200-token prompt at a time (unique
   texts: no cache hits), and classifications/s of 50-token prompts with 64 concurrent callers;
2. a real `router serve` process on the bundled policy: start-up to /readyz, RSS with the encoder loaded,
   and p50 of `POST /v1/route/explain` over HTTP;
3. `router classify` on 5,000 short prompts.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one tokenizer used from two threads

ROOT = Path(__file__).parents[2]
CORPUS = [
    json.loads(line)["messages"][-1]["content"]
    for f in ("router/classifier/data/tasks-train.jsonl", "router/classifier/data/strong-weak-train.jsonl")
    for line in (ROOT / f).read_text().split("\n")
    if line.strip()
]


def _tokenizer() -> object:
    from tokenizers import Tokenizer

    from router.classifier.encoder import default_model_path

    tok = Tokenizer.from_file(f"{default_model_path()}/tokenizer.json")
    tok.no_truncation()  # the file carries the model's 128-piece truncation
    return tok


TOKENIZER = _tokenizer()


def prompt(tokens: int, rng: random.Random) -> str:
    """A real prompt from the training data cut to exactly ``tokens`` MiniLM word pieces (the encoder's own
    tokens), made unique with a number so that no run hits the embedding cache."""
    while True:
        text = f"{rng.randrange(10**6)} {rng.choice(CORPUS)}"
        enc = TOKENIZER.encode(text, add_special_tokens=False)  # type: ignore[attr-defined]
        if len(enc.ids) >= tokens:
            return str(text[: enc.offsets[tokens - 1][1]])


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def in_process(n_latency: int, n_throughput: int) -> None:
    from router.classifier.service import ClassifierRuntime, load_in, worker
    from router.classifier.text import prompt_view
    from router.policy.compile import load_policy
    from router.telemetry.metrics import Metrics

    rng = random.Random(7)
    t = time.perf_counter()
    executor = worker()
    model = await load_in(executor, 0)
    print(f"model load: {time.perf_counter() - t:.2f} s")
    policy = load_policy(ROOT / "policies", env={})
    metrics = Metrics()
    rt = ClassifierRuntime(model, metrics, batch=32, wait_ms=2.0, cache_size=0, executor=executor)
    rt.start()
    await rt.classify(prompt_view([{"role": "user", "content": "warm up"}]), policy)
    lat = []
    latency_views = [prompt_view([{"role": "user", "content": prompt(200, rng)}]) for _ in range(n_latency)]
    for view in latency_views:
        t = time.perf_counter()
        await rt.classify(view, policy)
        lat.append((time.perf_counter() - t) * 1000)
    p50, p99 = pct(lat, 50), pct(lat, 99)
    print(f"classify 200-token prompt, one at a time: p50 {p50:.1f} ms  p99 {p99:.1f} ms  (n={n_latency})")
    views = [prompt_view([{"role": "user", "content": prompt(50, rng)}]) for _ in range(n_throughput)]
    sem = asyncio.Semaphore(64)

    async def one(v: object) -> float:
        async with sem:
            t0 = time.perf_counter()
            await rt.classify(v, policy)  # type: ignore[arg-type]
            return (time.perf_counter() - t0) * 1000

    before = (
        metrics.registry.get_sample_value("router_classifier_batch_size_sum") or 0.0,
        metrics.registry.get_sample_value("router_classifier_batch_size_count") or 0.0,
    )
    t = time.perf_counter()
    lats = await asyncio.gather(*(one(v) for v in views))
    wall = time.perf_counter() - t
    total = (metrics.registry.get_sample_value("router_classifier_batch_size_sum") or 0.0) - before[0]
    count = (metrics.registry.get_sample_value("router_classifier_batch_size_count") or 0.0) - before[1]
    batches = total / max(count, 1.0)
    print(
        f"classify 50-token prompts, 64 concurrent: {n_throughput / wall:.0f}/s  p50 {pct(lats, 50):.1f} ms  "
        f"p99 {pct(lats, 99):.1f} ms  mean batch {batches:.1f}"
    )
    await rt.stop()


def served(port: int) -> None:
    env = {**os.environ, "ROUTER_RELOAD_INTERVAL_S": "0", "ROUTER_ACCESS_LOG": "false"}
    t = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "router",
            "serve",
            "--policies",
            str(ROOT / "policies"),
            "--emulate-missing",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
            if time.perf_counter() - t > 60:
                raise SystemExit("proxy not ready in 60 s")
        ready = time.perf_counter() - t
        rss = int(
            next(
                line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines() if line.startswith("VmRSS")
            ).split()[1]
        )
        rng = random.Random(3)
        lat = []
        for _ in range(200):
            body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": prompt(200, rng)}]}).encode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/route/explain", body, {"Content-Type": "application/json"}
            )
            t0 = time.perf_counter()
            with urllib.request.urlopen(req) as r:
                r.read()
            lat.append((time.perf_counter() - t0) * 1000)
        print(
            f"router serve (bundled policy, encoder loaded): start-up to ready {ready:.1f} s  RSS {rss / 1024:.0f} MB"
        )
        print(
            f"POST /v1/route/explain, 200-token prompt over HTTP: p50 {pct(lat, 50):.1f} ms  p99 {pct(lat, 99):.1f} ms"
        )
    finally:
        proc.terminate()
        proc.wait(10)


def batch_cli(n: int) -> None:
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "in.jsonl", Path(d) / "out.jsonl"
        src.write_text(
            "".join(
                json.dumps({"id": i, "messages": [{"role": "user", "content": prompt(30, rng)}]}) + "\n"
                for i in range(n)
            )
        )
        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "router",
                "classify",
                "--policies",
                str(ROOT / "policies"),
                "--input",
                str(src),
                "--output",
                str(dst),
            ],
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - t
        lines = len(dst.read_text().splitlines())
        print(
            f"router classify: {lines} short prompts in {wall:.1f} s wall, model load included ({lines / wall:.0f}/s)"
        )


def canary(n: int = 50) -> None:
    """The raw encoder as its package ships it (six layers, no tuning), one ~25-token text at a time: how
    fast this host is today, to read every other figure beside (issue #16)."""
    from sentence_transformers import SentenceTransformer

    from router.classifier.encoder import default_model_path

    model = SentenceTransformer(default_model_path(), device="cpu")
    for _ in range(5):
        model.encode(["warm-up text for the canary"])
    times = []
    for i in range(n):
        t = time.perf_counter()
        model.encode([f"canary {i}: summarize the attached quarterly report in three short bullet points"])
        times.append((time.perf_counter() - t) * 1000)
    print(f"canary: raw all-MiniLM-L6-v2, one ~25-token text at a time: p50 {pct(times, 50):.1f} ms")


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    canary()
    asyncio.run(in_process(50 if quick else 300, 500 if quick else 3000))
    served(18931)
    batch_cli(1000 if quick else 5000)
