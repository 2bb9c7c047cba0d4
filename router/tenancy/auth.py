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
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def authenticate(headers: Mapping[str, str], keys: KeyStore, auth: Auth, today: dt.date) -> Principal:
    token = bearer(headers)
    key = keys.lookup(token) if token else None
    if key is not None:
        if key.expired(today):
            raise Unauthorized(f"The API key {key.name!r} expired on {key.expires}.", code="expired_api_key")
        return Principal(key.tenant, key.name, key.admin)
    if auth.anonymous:
        return Principal(auth.anonymous_tenant, None)
    if token is None:
        raise Unauthorized("Missing API key: send it as `Authorization: Bearer <key>`.", code="missing_api_key")
    raise Unauthorized("Incorrect API key provided.", code="invalid_api_key")


def require_admin(principal: Principal, auth: Auth) -> None:
    if principal.admin or auth.admin_without_key:
        return
    raise Forbidden("The admin API needs a key marked `admin: true`.")
