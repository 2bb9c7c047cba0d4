"""Which tenant a request is, from its ``Authorization`` header, the keys and the policy's ``auth``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from router.errors import Forbidden, Unauthorized
from router.policy.schema import Auth
from router.tenancy.keys import KeyStore


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: str
    key_name: str | None  # None: anonymous
    admin: bool = False


def bearer(headers: Mapping[str, str]) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header; None when there is no such header.

    Any other ``Authorization`` value (another scheme, an empty token, bytes that are not text) is a
    wrong key, not a missing one."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "Malformed Authorization header: send `Authorization: Bearer <key>`.", code="invalid_api_key"
        )
    return token


def authenticate(headers: Mapping[str, str], keys: KeyStore, auth: Auth, today: dt.date) -> Principal:
    """The caller: the tenant of its key; anonymous (when the policy allows it) only if it sent no key at
    all. A key that is not valid is a 401 even under anonymous access: anonymous means "no key", not "any
    key", so a typo in a key never silently bills the wrong tenant."""
    token = bearer(headers)
    if token is None:
        if auth.anonymous:
            return Principal(auth.anonymous_tenant, None)
        raise Unauthorized("Missing API key: send it as `Authorization: Bearer <key>`.", code="missing_api_key")
    try:
        key = keys.lookup(token)
    except UnicodeEncodeError:  # bytes that are not UTF-8 arrive as surrogates
        key = None
    if key is None:
        raise Unauthorized("Incorrect API key provided.", code="invalid_api_key")
    if key.expired(today):
        raise Unauthorized(f"The API key {key.name!r} expired on {key.expires}.", code="expired_api_key")
    return Principal(key.tenant, key.name, key.admin)


def require_admin(principal: Principal, auth: Auth) -> None:
    if principal.admin or auth.admin_without_key:
        return
    raise Forbidden("The admin API needs a key marked `admin: true`.")
