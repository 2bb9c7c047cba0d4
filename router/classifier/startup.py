"""Starting the classifier in a serving process, only when the policy can use it.

Light on purpose: the encoder and heads (numpy, scikit-learn, torch; ≈ 90 MB before the model itself)
are imported only when a policy has a task or complexity rule, so a proxy of pinned aliases never pays.
"""

from __future__ import annotations

import logging
import time

from router.serving import RouterState

log = logging.getLogger(__name__)


async def start(state: RouterState) -> None:
    """Load the encoder and heads (in the classifier's own thread) and start the batcher, if this process
    classifies (``ROUTER_CLASSIFIER``) and the serving policy has a use for it. Called at start-up and
    after each reload, so a policy that gains its first task rule gets a classifier without a restart.
    A load failure is not fatal: requests route by the rules without classification, and the failure
    shows in ``router_classifier_up``, ``/readyz`` and the classify spans.
    """
    s = state.settings
    policy = state.serving.policy
    if state.classifier is not None or state.classifier_error is not None or not s.classifier:
        return
    if not policy.needs_classifier:
        return
    from router.classifier.service import ClassifierRuntime, load_in, worker

    started = time.perf_counter()
    executor = worker()
    try:
        model = state.classifier_model or await load_in(executor, s.encoder_threads)
    except Exception as exc:
        log.exception("classifier failed to load; routing by rules without classification")
        state.classifier_error = f"load failed: {type(exc).__name__}: {exc}"
        state.metrics.classifier_up.set(0)
        executor.shutdown(wait=False)
        return
    runtime = ClassifierRuntime(
        model,
        state.metrics,
        batch=s.classifier_batch,
        wait_ms=s.classifier_wait_ms,
        cache_size=s.classifier_cache,
        timeout_ms=s.classifier_timeout_ms,
        executor=executor,
    )
    runtime.start()
    state.classifier = runtime
    log.info("classifier ready in %.1f s (%s)", time.perf_counter() - started, model.name)
