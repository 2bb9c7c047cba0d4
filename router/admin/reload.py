"""Hot reload: on SIGHUP and when a policy file changes. All or nothing.

A reload that finds any error keeps the old policy serving, logs every issue with file and line, and
sets ``router_policy_last_reload_success`` to 0 (``router_policy_reloads_total{result="failure"}``
counts it). Reading and parsing the files, pricing and building the clusters run in a worker thread (a
large or hostile file never stalls the requests being served), and *any* exception on the way counts as
a rejected edit: the watcher itself never dies, so later good edits and SIGHUP still take effect.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

from router.accounting.prices import PriceBook, price_book
from router.classifier import startup as classifier
from router.errors import PolicyError
from router.policy.compile import Policy, load_policy, policy_files
from router.serving import RouterState, Serving
from router.tenancy.keys import KeyStore, load_keys
from router.upstream.upstreams import EmulatedUpstreams, build_upstreams

log = logging.getLogger(__name__)


def snapshot(path: Path, keys_file: str | None = None) -> tuple[tuple[str, int, int], ...]:
    """What a change check compares: every policy file's (and the keys file's) name, mtime and size."""
    out = []
    for f in [*policy_files(path), *([Path(keys_file)] if keys_file else [])]:
        try:
            st = f.stat()
        except OSError:
            out.append((str(f), -1, -1))
            continue
        out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


def _read(state: RouterState) -> tuple[Policy, PriceBook, KeyStore]:
    """Policy, prices and keys from the files (blocking: run in a worker thread)."""
    s = state.settings
    policy = load_policy(s.policies, state.env)
    return policy, price_book(policy), load_keys(s.keys_file, s.api_keys)  # pricing may import litellm


def _rejected(state: RouterState, error: str) -> None:
    state.metrics.policy_reloads.labels("failure").inc()
    state.metrics.policy_ok.set(0)
    state.last_reload_error = error


async def reload_policy(state: RouterState) -> bool:
    """Load the policy files again; swap them in only if all are valid. Returns whether it swapped."""
    metrics = state.metrics
    try:
        policy, prices, keys = await asyncio.to_thread(_read, state)
        assert state.session is not None
        emulated = await state.fleet.ensure(policy, state.env) if state.settings.emulate_missing else None
        upstreams = await asyncio.to_thread(
            build_upstreams,
            policy,
            state.session,
            emulated or EmulatedUpstreams(),
            state.serving.upstreams,
            state.env,
            state.litellm_loop,
        )
    except PolicyError as exc:
        for issue in exc.issues:
            log.error("policy reload rejected, old policy keeps serving: %s", issue)
        _rejected(state, str(exc))
        return False
    except Exception as exc:  # whatever a bad edit raises (RecursionError, ...), the old policy keeps serving
        log.exception("policy reload failed, old policy keeps serving")
        _rejected(state, f"{type(exc).__name__}: {exc}")
        return False
    state.serving = Serving(policy, upstreams, prices, keys)
    metrics.policy_reloads.labels("success").inc()
    metrics.policy_loaded(policy.digest, time.time())
    state.last_reload_error = None
    await classifier.start(state)  # a no-op unless the new policy is the first to need it
    log.info("policy %s reloaded from %s (%d files)", policy.digest, state.settings.policies, len(policy.files))
    return True


async def watch(state: RouterState) -> AsyncIterator[None]:
    """Cleanup-context body: SIGHUP handler plus a polling loop on file changes."""
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    try:
        loop.add_signal_handler(signal.SIGHUP, wake.set)
        has_signal = True
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests) or not POSIX
        has_signal = False
    interval = state.settings.reload_interval_s

    async def run() -> None:
        seen = snapshot(state.settings.policies, state.settings.keys_file)
        while True:
            try:
                await asyncio.wait_for(wake.wait(), timeout=interval if interval > 0 else None)
                forced = True
            except TimeoutError:
                forced = False
            wake.clear()
            now = snapshot(state.settings.policies, state.settings.keys_file)
            if forced or now != seen:
                seen = now
                await reload_policy(state)  # never raises: a failure is a rejected reload

    task = asyncio.create_task(run(), name="policy-watcher")
    try:
        yield
    finally:
        task.cancel()
        if has_signal:
            loop.remove_signal_handler(signal.SIGHUP)
