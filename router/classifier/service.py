"""The classifier in a serving process: one encoder, micro-batched off the event loop, with an LRU cache.

A request's :class:`~router.classifier.text.PromptView` goes into a queue; a single batching task takes up
to ``batch`` waiting items (under load, waiting at most ``wait_ms`` for company when the queue is short;
a lone request at a quiet time goes at once), and one
worker thread runs the whole batch: the forward pass for the texts not in the cache, then both heads and
the policy's custom-task centroids. Requests that arrive while a batch runs form the next one, so under
load batches grow by themselves and the encoder's throughput rises with them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from router.classifier.model import Matrix
from router.classifier.predict import Classification, ClassifierModel, CustomTasks, classify
from router.classifier.text import PromptView
from router.errors import ClassifierUnavailable
from router.policy.compile import Policy
from router.telemetry.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass
class _Item:
    view: PromptView
    key: bytes
    policy: Policy
    future: asyncio.Future[tuple[Classification, bool]]
    vector: Matrix | None = None


def worker() -> ThreadPoolExecutor:
    """The classifier's one thread. Load the model in it too: torch run from a thread other than the one
    that warmed it up was measured 70 % slower per forward pass here (10.9 ms against 18.7 ms)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="classifier")


async def load_in(executor: ThreadPoolExecutor, threads: int) -> ClassifierModel:
    return await asyncio.get_running_loop().run_in_executor(executor, ClassifierModel.load, threads)


class ClassifierRuntime:
    def __init__(
        self,
        model: ClassifierModel,
        metrics: Metrics,
        *,
        batch: int = 32,
        wait_ms: float = 2.0,
        cache_size: int = 4096,
        timeout_ms: float = 1000.0,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.model = model
        self.metrics = metrics
        self.batch = batch
        self.wait_s = wait_ms / 1000
        self.cache_size = cache_size
        self.timeout_s = timeout_ms / 1000
        self._cache: OrderedDict[bytes, Matrix] = OrderedDict()
        self._queue: list[_Item] = []
        self._wake = asyncio.Event()
        self._executor = executor or worker()
        # Centroids by the custom tasks' content; touched only by the worker thread.
        self._custom: dict[tuple[tuple[str, tuple[str, ...], float], ...], CustomTasks] = {}
        self._task: asyncio.Task[None] | None = None
        self.failed: str | None = None
        self._last_batch = 0
        metrics.classifier_up.set(1)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="classifier-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for item in self._queue:
            if not item.future.done():
                item.future.set_exception(ClassifierUnavailable("classifier stopped", reason="unavailable"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- the request side -------------------------------------------------------------------------
    async def classify(self, view: PromptView, policy: Policy) -> tuple[Classification, bool]:
        """The classification and whether its embedding came from the cache. Raises ClassifierUnavailable."""
        if self._task is None or self._task.done():
            raise ClassifierUnavailable("classifier is not running", reason="unavailable")
        text = view.embed_text
        key = hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()
        vector = self._cache.get(key)
        self.metrics.classifier_cache.labels("hit" if vector is not None else "miss").inc()
        if vector is not None:
            self._cache.move_to_end(key)
        future: asyncio.Future[tuple[Classification, bool]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(view, key, policy, future, vector))
        self._wake.set()
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except TimeoutError:
            raise ClassifierUnavailable(
                f"classification took longer than {self.timeout_s * 1000:.0f} ms", reason="timeout"
            ) from None
        self.metrics.classify_duration.observe(time.perf_counter() - started)
        return result

    # -- the batching side ------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            # Wait for company only under load (the last pass was shared): a lone request at a quiet
            # time would gain nothing from waiting, and under load batches also grow by themselves
            # while the previous pass runs.
            if self._last_batch > 1 and len(self._queue) < self.batch and self.wait_s > 0:
                await asyncio.sleep(self.wait_s)
            batch, self._queue = self._queue[: self.batch], self._queue[self.batch :]
            if not self._queue:
                self._wake.clear()
            batch = [item for item in batch if not item.future.done()]
            if not batch:
                continue
            self.metrics.classifier_batch.observe(len(batch))
            self._last_batch = len(batch)
            try:
                results, fresh = await loop.run_in_executor(self._executor, self._work, batch)
            except Exception as exc:
                log.exception("classifier batch of %d failed; those requests route without classification", len(batch))
                self.metrics.classifier_up.set(0)
                self.failed = f"{type(exc).__name__}: {exc}"
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(ClassifierUnavailable(self.failed, reason="encoder"))
                continue
            self.metrics.classifier_up.set(1)
            self.failed = None
            for key, vector in fresh.items():
                self._remember(key, vector)
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)

    def _remember(self, key: bytes, vector: Matrix) -> None:
        if self.cache_size <= 0:
            return
        self._cache[key] = vector
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _work(self, batch: list[_Item]) -> tuple[list[tuple[Classification, bool]], dict[bytes, Matrix]]:
        """In the worker thread: encode what is missing, then the heads, per policy in the batch."""
        missing: dict[bytes, str] = {}
        for item in batch:
            if item.vector is None and item.key not in missing:
                missing[item.key] = item.view.embed_text
        fresh: dict[bytes, Matrix] = {}
        if missing:
            vectors = self.model.encode(list(missing.values()))
            fresh = dict(zip(missing, vectors, strict=True))
        matrix = np.stack([item.vector if item.vector is not None else fresh[item.key] for item in batch])
        out: list[tuple[Classification, bool] | None] = [None] * len(batch)
        by_policy: dict[int, list[int]] = {}
        for i, item in enumerate(batch):
            by_policy.setdefault(id(item.policy), []).append(i)
        for idx in by_policy.values():
            custom = self._custom_tasks(batch[idx[0]].policy)
            results = classify(self.model.heads, matrix[idx], [batch[i].view for i in idx], custom)
            for i, r in zip(idx, results, strict=True):
                out[i] = (r, batch[i].vector is not None)
        return [r for r in out if r is not None], fresh

    def _custom_tasks(self, policy: Policy) -> CustomTasks:
        tasks = policy.classifier.tasks
        key = tuple((name, tuple(t.examples), t.min_similarity) for name, t in tasks.items())
        cached = self._custom.get(key)
        if cached is None:
            cached = CustomTasks.build(
                {name: (t.examples, t.min_similarity) for name, t in tasks.items()}, self.model.encode
            )
            if len(self._custom) > 4:  # keep only the latest few policies' centroids
                self._custom.clear()
            self._custom[key] = cached
        return cached
