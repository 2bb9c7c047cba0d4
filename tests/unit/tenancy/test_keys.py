from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from router.errors import PolicyError
from router.tenancy.keys import hash_key, load_keys, new_key, parse_env_keys, parse_keys_file

KEY = "sk-router-test-0123456789"


def test_keys_file_maps_hashed_keys_to_tenants(tmp_path: Path) -> None:
    f = tmp_path / "keys.yaml"
    f.write_text(
        f"keys:\n  - sha256: {hash_key(KEY)}\n    tenant: search\n    name: search-prod\n    expires: 2027-01-31\n"
        f"  - sha256: {hash_key('other')}\n    tenant: ops\n    admin: true\n"
    )
    store = load_keys(str(f), None)
    key = store.lookup(KEY)
    assert key is not None
    assert (key.tenant, key.name, key.admin) == ("search", "search-prod", False)
    assert not key.expired(dt.date(2027, 1, 31))
    assert key.expired(dt.date(2027, 2, 1))
    assert store.lookup("nope") is None
    assert store.has_admin
    assert len(store) == 2


def test_bad_entries_are_reported_with_file_and_line() -> None:
    text = "keys:\n  - sha256: abc\n    tenant: t\n  - sha256: " + "a" * 64 + "\n    tenant: t\n    colour: red\n"
    with pytest.raises(PolicyError) as err:
        parse_keys_file(text, "keys.yaml")
    got = [str(i) for i in err.value.issues]
    assert got[0].startswith("keys.yaml:2: keys[0].sha256: String should match pattern")
    assert got[1] == "keys.yaml:6: keys[1].colour: unknown key"


def test_the_same_key_twice_and_an_unreadable_file(tmp_path: Path) -> None:
    h = hash_key(KEY)
    with pytest.raises(PolicyError, match=r"keys.yaml:4: keys\[1\]: the same key is listed twice"):
        parse_keys_file(f"keys:\n  - {{sha256: {h}, tenant: a}}\n\n  - {{sha256: {h}, tenant: b}}\n", "keys.yaml")
    with pytest.raises(PolicyError, match="cannot read the keys file"):
        load_keys(str(tmp_path / "missing.yaml"), None)


def test_environment_keys() -> None:
    h = hash_key(KEY)
    keys = parse_env_keys(f"alpha:{h}, ops:{hash_key('x')}:admin")
    assert keys[h].tenant == "alpha"
    assert keys[hash_key("x")].admin
    with pytest.raises(PolicyError, match=r"ROUTER_API_KEYS: \[0\]: expected tenant:sha256"):
        parse_env_keys("alpha:not-a-hash")
    with pytest.raises(PolicyError):
        parse_env_keys(f"alpha:{h}:root")


def test_new_keys_are_long_and_random() -> None:
    a, b = new_key(), new_key()
    assert a != b
    assert a.startswith("sk-router-")
    assert len(a) > 40


def test_keys_file_booleans_are_booleans() -> None:
    text = f"keys:\n  - sha256: {'a' * 64}\n    tenant: t\n    admin: 'yes'\n"
    with pytest.raises(PolicyError) as info:
        parse_keys_file(text, "keys.yaml")
    assert "keys.yaml:4: keys[0].admin" in str(info.value)


def test_keys_file_aliases_are_refused() -> None:
    text = f"keys:\n  - &k {{sha256: {'a' * 64}, tenant: t}}\n  - *k\n"
    with pytest.raises(PolicyError) as info:
        parse_keys_file(text, "keys.yaml")
    assert "aliases" in str(info.value)
