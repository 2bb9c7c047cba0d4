from __future__ import annotations

import datetime as dt

import pytest

from router.errors import Forbidden, Unauthorized
from router.policy.schema import Auth
from router.tenancy.auth import authenticate, bearer, require_admin
from router.tenancy.keys import Key, KeyStore, hash_key

KEYS = KeyStore(
    {
        hash_key("good"): Key("team-a", "a-prod"),
        hash_key("old"): Key("team-a", "a-old", expires=dt.date(2026, 1, 1)),
        hash_key("root"): Key("ops", "ops", admin=True),
    }
)
TODAY = dt.date(2026, 12, 1)


def test_bearer() -> None:
    assert bearer({"authorization": "Bearer abc"}) == "abc"
    assert bearer({"authorization": "bearer  abc "}) == "abc"
    assert bearer({}) is None
    for bad in ("Basic abc", "Bearer ", "Bearer", ""):
        with pytest.raises(Unauthorized) as err:
            bearer({"authorization": bad})
        assert err.value.code == "invalid_api_key"


def test_keys_select_tenants_and_bad_keys_get_401() -> None:
    p = authenticate({"authorization": "Bearer good"}, KEYS, Auth(), TODAY)
    assert (p.tenant, p.key_name, p.admin) == ("team-a", "a-prod", False)
    for headers, code in (({}, "missing_api_key"), ({"authorization": "Bearer bad"}, "invalid_api_key")):
        with pytest.raises(Unauthorized) as err:
            authenticate(headers, KEYS, Auth(), TODAY)
        assert err.value.code == code
        assert err.value.status == 401
        assert err.value.body()["error"]["type"] == "authentication_error"
    with pytest.raises(Unauthorized, match="expired on 2026-01-01") as old:
        authenticate({"authorization": "Bearer old"}, KEYS, Auth(anonymous=True), TODAY)
    assert old.value.code == "expired_api_key"  # even when anonymous use is allowed


def test_anonymous_use_when_the_policy_allows_it() -> None:
    auth = Auth(anonymous=True, anonymous_tenant="guests")
    assert authenticate({}, KEYS, auth, TODAY).tenant == "guests"
    assert authenticate({"authorization": "Bearer good"}, KEYS, auth, TODAY).tenant == "team-a"


@pytest.mark.parametrize("value", ["Bearer unknown", "Bearer sk-\udcff\udcfe", "Basic dXNlcjpwdw==", "Bearer "])
def test_anonymous_means_no_key_not_a_wrong_key(value: str) -> None:
    # Issue #12: an unknown or malformed key became tenant `anonymous` (200); non-UTF-8 bytes were a 500.
    with pytest.raises(Unauthorized) as err:
        authenticate({"authorization": value}, KEYS, Auth(anonymous=True), TODAY)
    assert err.value.code == "invalid_api_key"


def test_admin() -> None:
    require_admin(authenticate({"authorization": "Bearer root"}, KEYS, Auth(), TODAY), Auth())
    with pytest.raises(Forbidden):
        require_admin(authenticate({"authorization": "Bearer good"}, KEYS, Auth(), TODAY), Auth())
    require_admin(
        authenticate({}, KEYS, Auth(anonymous=True, admin_without_key=True), TODAY), Auth(admin_without_key=True)
    )
