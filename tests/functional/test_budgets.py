"""Keys and tenants, costs on every answer, budgets that deny or downgrade, the ledger and its report,
the response cache: through the real app (state in memory, or in the machine's Redis under a unique
prefix)."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from router.accounting.tokens import TokenCounter
from router.emulator.app import STATE as EMU
from router.tenancy.keys import hash_key
from tests.conftest import EmulatorFactory, ProxyFactory, chat_body, url
from tests.redis_servers import SHARED_URL

POLICY = """
version: 1
clusters:
  pool:
    kind: vllm
    endpoints: ["{pool}"]
    model: small-model
    cost: {{usd_per_gpu_hour: 3.6, input_tokens_per_second: 1000, output_tokens_per_second: 100}}
  api:
    kind: frontier
    model: openai/frontier-model
    api_key_env: TEST_FRONTIER_KEY
    api_base: {api}
    price: {{input_usd_per_mtok: 1000, output_usd_per_mtok: 4000}}
models:
  cheap: {{cluster: pool}}
  dear: {{cluster: api}}
auth: {{anonymous: {anonymous}}}
costs: {{baseline_model: openai/gpt-4o, baseline_price: {{input_usd_per_mtok: 2000, output_usd_per_mtok: 8000}}}}
{extra}
"""
# pool: $0.001/s over 1000 and 100 tokens/s -> $1 and $10 per million; a 7-in 16-out answer costs 0.000167.
KEY_A, KEY_B, ADMIN = "sk-router-tenant-a", "sk-router-tenant-b", "sk-router-ops"
KEYS = f"a:{hash_key(KEY_A)},b:{hash_key(KEY_B)},ops:{hash_key(ADMIN)}:admin"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def stack(
    emulator: EmulatorFactory, proxy: ProxyFactory, extra: str = "", anonymous: bool = False, **settings: Any
) -> Any:
    pool = await emulator(model="small-model")
    api = await emulator(model="frontier-model")
    text = POLICY.format(pool=url(pool), api=url(api), anonymous=str(anonymous).lower(), extra=extra)
    client = await proxy(text, api_keys=KEYS, **settings)
    return client, pool, api


async def test_keys_select_tenants_and_bad_keys_get_401(
    emulator: EmulatorFactory, proxy: ProxyFactory, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="router.access")
    client, _, _ = await stack(emulator, proxy)
    missing = await client.post("/v1/chat/completions", json=chat_body("cheap"))
    assert missing.status == 401
    assert (await missing.json())["error"]["code"] == "missing_api_key"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = await client.post("/v1/chat/completions", json=chat_body("cheap"), headers=auth("sk-nope"))
    assert (wrong.status, (await wrong.json())["error"]["type"]) == (401, "authentication_error")
    ok = await client.post("/v1/chat/completions", json=chat_body("cheap"), headers=auth(KEY_A))
    assert ok.status == 200
    assert "sk-router-tenant-a" not in caplog.text  # the key is never logged
    log = [orjson.loads(r.message) for r in caplog.records if r.name == "router.access"]
    assert log[-1]["tenant"] == "a"
    assert log[-1]["key"] == f"a-{hash_key(KEY_A)[:8]}"
    assert (await client.get("/v1/admin/clusters", headers=auth(KEY_A))).status == 403
    assert (await client.get("/v1/admin/clusters", headers=auth(ADMIN))).status == 200
    metrics = await (await client.get("/metrics", headers=auth(ADMIN))).text()
    assert 'router_auth_failures_total{code="missing_api_key"} 1.0' in metrics


async def test_every_answer_carries_its_cost_and_the_ledger_adds_up(
    emulator: EmulatorFactory, proxy: ProxyFactory
) -> None:
    client, _, _ = await stack(emulator, proxy)
    total, baseline = Decimal(0), Decimal(0)
    for model, key in (("cheap", KEY_A), ("cheap", KEY_A), ("dear", KEY_A), ("cheap", KEY_B)):
        resp = await client.post("/v1/chat/completions", json=chat_body(model), headers=auth(key))
        assert resp.status == 200
        usage = (await resp.json())["usage"]
        cost = Decimal(resp.headers["x-router-cost-usd"])
        if model == "cheap":
            expected = Decimal(usage["prompt_tokens"]) * Decimal("1e-6") + Decimal(
                usage["completion_tokens"]
            ) * Decimal("1e-5")
            assert abs(cost - expected) < Decimal("1e-9")
        total += cost
        baseline += Decimal(resp.headers["x-router-baseline-cost-usd"])
    report = await (await client.get("/v1/admin/usage?group_by=tenant", headers=auth(ADMIN))).json()
    assert abs(Decimal(str(report["total"]["cost_usd"])) - total) < Decimal("1e-8")
    assert abs(Decimal(str(report["total"]["baseline_cost_usd"])) - baseline) < Decimal("1e-8")
    assert {r["tenant"]: r["requests"] for r in report["rows"]} == {"a": 3, "b": 1}
    assert report["total"]["savings_usd"] > 0
    metrics = await (await client.get("/metrics", headers=auth(ADMIN))).text()
    assert 'router_cost_usd_total{cluster="api",route="model:dear",tenant="a"}' in metrics
    assert 'router_savings_usd_total{route="model:cheap",tenant="a"}' in metrics
    bad = await client.get("/v1/admin/usage?window=week", headers=auth(ADMIN))
    assert (bad.status, (await bad.json())["error"]["param"]) == (400, "window")


async def test_a_deny_budget_answers_429_with_retry_after(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    # A frontier answer of 7 in and at most 16 out reserves ~0.08; three fit in 0.25 at the real cost of ~0.07.
    extra = "budgets:\n  - {name: a-daily, tenant: a, usd_per_day: 0.25}\n"
    client, _, api = await stack(emulator, proxy, extra)
    statuses = []
    for _ in range(6):
        resp = await client.post("/v1/chat/completions", json=chat_body("dear", max_tokens=16), headers=auth(KEY_A))
        statuses.append(resp.status)
        if resp.status == 429:
            body = await resp.json()
            assert body["error"]["code"] == "budget_exceeded"
            assert body["error"]["type"] == "rate_limit_error"
            assert "Budget 'a-daily' is exhausted" in body["error"]["message"]
            assert "per day (UTC)" in body["error"]["message"]
            assert 0 < int(resp.headers["Retry-After"]) <= 86_400
            assert resp.headers["x-router-budget"] == "a-daily"
    assert statuses[:2] == [200, 200]
    assert statuses[-1] == 429
    served = api.app[EMU].requests_total
    assert served == statuses.count(200)  # denied requests never reach the upstream
    other = await client.post("/v1/chat/completions", json=chat_body("dear", max_tokens=16), headers=auth(KEY_B))
    assert other.status == 200  # a budget of tenant a only
    spent = await (await client.get("/v1/admin/usage?group_by=tenant", headers=auth(ADMIN))).json()
    assert next(r for r in spent["rows"] if r["tenant"] == "a")["cost_usd"] <= 0.25


async def test_a_downgrade_budget_sends_requests_to_the_pool(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    extra = (
        "budgets:\n  - {name: frontier-cap, tenant: '*', usd_per_day: 0.1, on_exhausted: downgrade,"
        " downgrade_to: pool}\n"
    )
    client, pool, _ = await stack(emulator, proxy, extra)
    clusters = []
    for _ in range(4):
        resp = await client.post("/v1/chat/completions", json=chat_body("dear", max_tokens=16), headers=auth(KEY_A))
        assert resp.status == 200
        clusters.append(resp.headers["x-router-cluster"])
    assert clusters[0] == "api"
    assert clusters[-1] == "pool"
    assert pool.app[EMU].requests_total == clusters.count("pool")
    metrics = await (await client.get("/metrics", headers=auth(ADMIN))).text()
    assert 'router_budget_exhausted_total{action="downgrade",budget="frontier-cap"}' in metrics


async def test_requests_per_minute(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    extra = "budgets:\n  - {name: rpm, tenant: '*', requests_per_minute: 3}\n"
    client, _, _ = await stack(emulator, proxy, extra)
    replies = await asyncio.gather(
        *(client.post("/v1/chat/completions", json=chat_body("cheap"), headers=auth(KEY_A)) for _ in range(8))
    )
    statuses = sorted(r.status for r in replies)
    assert statuses.count(200) in (3, 6)  # 3 per UTC minute (6 if the burst straddled a minute boundary)
    assert set(statuses) == {200, 429}


async def test_streams_are_costed_at_their_end(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    client, _, _ = await stack(emulator, proxy)
    resp = await client.post("/v1/chat/completions", json=chat_body("cheap", stream=True), headers=auth(KEY_A))
    raw = await resp.read()
    events = [e for e in raw.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    assert events[-2].startswith(b": router-cost ")  # an SSE comment: clients skip it
    cost = orjson.loads(events[-2][len(b": router-cost ") :])
    assert cost["cost_usd"] > 0
    assert cost["baseline_cost_usd"] > cost["cost_usd"]
    report = await (await client.get("/v1/admin/usage", headers=auth(ADMIN))).json()
    assert report["total"]["cost_usd"] == pytest.approx(cost["cost_usd"], abs=1e-9)


async def test_a_stream_without_usage_is_counted(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    client, pool, _ = await stack(emulator, proxy)
    pool.app[EMU].config.send_usage = False  # like llama.cpp's server
    resp = await client.post("/v1/chat/completions", json=chat_body("cheap", stream=True), headers=auth(KEY_A))
    events = [orjson.loads(e[6:]) for e in (await resp.read()).split(b"\n\n") if e.startswith(b"data: {")]
    text = "".join(c["delta"].get("content") or "" for e in events for c in e["choices"])
    report = await (await client.get("/v1/admin/usage", headers=auth(ADMIN))).json()
    assert report["total"]["output_tokens"] == TokenCounter().count(text)  # counted, not guessed
    assert report["total"]["output_tokens"] >= 16
    assert report["total"]["input_tokens"] > 0


async def test_the_response_cache_answers_deterministic_requests(
    emulator: EmulatorFactory, proxy: ProxyFactory
) -> None:
    client, pool, _ = await stack(emulator, proxy, "cache: {enabled: true, ttl_s: 60}\n")
    body = chat_body("cheap", temperature=0)
    first = await client.post("/v1/chat/completions", json=body, headers=auth(KEY_A))
    second = await client.post("/v1/chat/completions", json=body, headers=auth(KEY_A))
    assert (first.headers["x-router-cache"], second.headers["x-router-cache"]) == ("miss", "hit")
    assert await first.read() == await second.read()
    assert second.headers["x-router-cost-usd"] == "0.0000000000"
    assert pool.app[EMU].requests_total == 1
    other_tenant = await client.post("/v1/chat/completions", json=body, headers=auth(KEY_B))
    assert other_tenant.headers["x-router-cache"] == "miss"  # per tenant
    sampled = await client.post("/v1/chat/completions", json=chat_body("cheap", temperature=0.7), headers=auth(KEY_A))
    assert "x-router-cache" not in sampled.headers  # not deterministic: never cached
    report = await (await client.get("/v1/admin/usage?group_by=tenant", headers=auth(ADMIN))).json()
    assert next(r for r in report["rows"] if r["tenant"] == "a")["cache_hits"] == 1


async def test_anonymous_callers_when_the_policy_allows(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    client, _, _ = await stack(emulator, proxy, anonymous=True)
    resp = await client.post("/v1/chat/completions", json=chat_body("cheap"))
    assert resp.status == 200
    report = await (await client.get("/v1/admin/usage?group_by=tenant", headers=auth(ADMIN))).json()
    assert [r["tenant"] for r in report["rows"]] == ["anonymous"]


async def test_budgets_in_redis_and_a_fail_closed_budget_without_it(
    emulator: EmulatorFactory, proxy: ProxyFactory, prefix: str
) -> None:
    extra = "budgets:\n  - {name: rpm, tenant: '*', requests_per_minute: 1000}\n"
    client, _, _ = await stack(emulator, proxy, extra, redis_url=SHARED_URL, state_prefix=prefix)
    assert (await client.post("/v1/chat/completions", json=chat_body("cheap"), headers=auth(KEY_A))).status == 200
    r = aioredis.Redis.from_url(SHARED_URL)
    keys = sorted([k.decode() async for k in r.scan_iter(match=f"{prefix}b:rpm:t=a:requests_per_minute:*")])
    assert len(keys) == 2  # the counter, and the settled use that explains it
    assert keys[1] == keys[0] + ":s"
    for _ in range(50):  # the settlement is off the answer's path
        if await r.get(keys[1]) == b"1":
            break
        await asyncio.sleep(0.02)
    assert [await r.get(k) for k in keys] == [b"1", b"1"]
    assert 0 < await r.ttl(keys[0]) <= 60 + 3600
    await r.aclose()

    closed = "budgets:\n  - {name: strict, tenant: '*', requests_per_minute: 1000, on_state_unavailable: closed}\n"
    down, _, _ = await stack(emulator, proxy, closed, redis_url="redis://127.0.0.1:9/0", state_prefix=prefix)
    resp = await down.post("/v1/chat/completions", json=chat_body("cheap"), headers=auth(KEY_A))
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "state_unavailable"
    health = await down.get("/healthz")
    assert health.status == 200  # health and metrics keep answering
    ready = await (await down.get("/readyz", headers=auth(ADMIN))).json()
    assert ready["state_store"] == {"kind": "redis", "up": False}
    assert "router_state_store_up 0.0" in await (await down.get("/metrics", headers=auth(ADMIN))).text()


async def test_a_keys_file_with_a_mistake_is_refused_with_file_and_line(
    tmp_path: Path, emulator: EmulatorFactory
) -> None:
    from router.errors import PolicyError
    from router.http.app import create_app
    from router.settings import Settings

    pool = await emulator(model="small-model")
    policy = tmp_path / "p.yaml"
    policy.write_text(
        f'version: 1\nclusters:\n  pool: {{kind: vllm, endpoints: ["{url(pool)}"], model: m}}\n'
        "models:\n  m: {cluster: pool}\n"
    )
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys:\n  - sha256: nothex\n    tenant: a\n")
    with pytest.raises(PolicyError, match=r"keys.yaml:2: keys\[0\].sha256"):
        create_app(Settings(policies=policy, keys_file=str(keys)))


async def test_reservations_count_what_reaches_the_upstream(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    # Issue #12: `n` in extra_body was not reserved (the upstream saw n: 128), and without max_tokens a
    # provider library picked its own cap (64,000) while 4,096 were reserved.
    extra = "budgets:\n  - {name: tpm, tenant: '*', tokens_per_minute: 1500}\n"
    client, pool, _ = await stack(emulator, proxy, extra)
    big = await client.post("/v1/chat/completions", json=chat_body("cheap", n=20, max_tokens=100), headers=auth(KEY_A))
    assert big.status == 429
    hidden = chat_body("cheap", max_tokens=100, extra_body={"n": 20})
    sneaky = await client.post("/v1/chat/completions", json=hidden, headers=auth(KEY_A))
    assert sneaky.status == 429  # the same request, with n in extra_body: reserved the same
    twice = chat_body("cheap", max_tokens=100, extra_body={"max_tokens": 4000})
    assert (await client.post("/v1/chat/completions", json=twice, headers=auth(KEY_A))).status == 400
    # No max_tokens: the cluster's cap (costs.default_max_tokens here, 4,096) is both sent and reserved.
    plain = await client.post("/v1/chat/completions", json=chat_body("cheap"), headers=auth(KEY_B))
    assert plain.status == 429
    capped = chat_body("cheap", max_tokens=50)
    ok = await client.post("/v1/chat/completions", json=capped, headers=auth(KEY_B))
    assert ok.status == 200
    assert pool.app[EMU].last_request["max_tokens"] == 50


async def test_the_cluster_cap_is_sent_when_a_request_sets_none(emulator: EmulatorFactory, proxy: ProxyFactory) -> None:
    pool = await emulator(model="small-model")
    api = await emulator(model="frontier-model")
    text = POLICY.format(pool=url(pool), api=url(api), anonymous="true", extra="")
    text = text.replace("    model: small-model\n", "    model: small-model\n    default_max_tokens: 33\n")
    client = await proxy(text, api_keys=KEYS)
    ok = await client.post("/v1/chat/completions", json=chat_body("cheap"))
    assert ok.status == 200
    assert pool.app[EMU].last_request["max_tokens"] == 33  # the pool's own cap
    dear = await client.post("/v1/chat/completions", json=chat_body("dear"))
    assert dear.status == 200
    assert api.app[EMU].last_request["max_tokens"] == 4096  # costs.default_max_tokens, through litellm
    own = await client.post("/v1/chat/completions", json=chat_body("cheap", max_completion_tokens=7))
    assert own.status == 200
    sent = pool.app[EMU].last_request
    assert (sent["max_completion_tokens"], "max_tokens" in sent) == (7, False)  # the client's cap, untouched
