import aiohttp

from router.emulator.devstack import EmulatorFleet
from router.policy.compile import compile_texts

POLICY = """
version: 1
clusters:
  pool: {kind: vllm, endpoints: [emulated, emulated], model: base, adapters: [a1]}
  api: {kind: frontier, model: anthropic/claude-sonnet-4-5, api_key_env: DEVSTACK_TEST_KEY,
        default_max_tokens: 1024}
  keyed: {kind: frontier, model: openai/gpt-4o, api_key_env: DEVSTACK_SET_KEY}
models:
  m: {cluster: pool}
"""


async def test_fleet_starts_emulators_only_for_what_is_missing() -> None:
    fleet = EmulatorFleet()
    policy = compile_texts([("p.yaml", POLICY)], env={})
    try:
        emulated = await fleet.ensure(policy, {"DEVSTACK_SET_KEY": "sk"})
        assert len(emulated.vllm["pool"]) == 2
        assert set(emulated.frontier) == {"api"}
        again = await fleet.ensure(policy, {"DEVSTACK_SET_KEY": "sk"})
        assert again.vllm == emulated.vllm  # reused across reloads
        async with aiohttp.ClientSession() as s, s.get(emulated.vllm["pool"][0] + "/models") as resp:
            ids = [m["id"] for m in (await resp.json())["data"]]
        assert ids == ["base", "a1"]
    finally:
        await fleet.stop()
    assert fleet.runners == {}
