"""API keys, stored hashed: a keys file (YAML, with file and line in every error) and ``ROUTER_API_KEYS``.

A key is never kept, compared or logged in the clear: a request's ``Authorization: Bearer <key>`` is
hashed (SHA-256; keys are long random tokens, so a salt would add nothing) and looked up. Keys file::

    keys:
      - sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        tenant: team-search
        name: search-prod          # for humans, logs and metrics: never the key
        admin: false               # may use /v1/admin/*
        expires: 2027-06-30        # optional, UTC date; after it the key gets a 401

``ROUTER_API_KEYS``: comma-separated ``tenant:sha256`` or ``tenant:sha256:admin`` entries.
``router keys new --tenant T`` makes a key and prints the entry; ``router keys hash`` hashes one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from router.errors import PolicyError, PolicyIssue
from router.policy.yamlsrc import dotted, parse_yaml

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"
_HEX = re.compile(r"^[0-9a-f]{64}$")
KEY_PREFIX = "sk-router-"
MAX_FILE_BYTES = 16 * 1024 * 1024  # about 70,000 keys


class _KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the key, lower-case hex.")
    tenant: str = Field(pattern=NAME)
    name: str = Field("", description="A label for humans, logs and metrics.")
    admin: StrictBool = False  # `admin: "yes"` is an error, not an admin
    expires: dt.date | None = None


class _KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[_KeyEntry] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Key:
    tenant: str
    name: str
    admin: bool = False
    expires: dt.date | None = None

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and today > self.expires


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyStore:
    by_hash: Mapping[str, Key]

    def lookup(self, key: str) -> Key | None:
        return self.by_hash.get(hash_key(key))

    @property
    def has_admin(self) -> bool:
        return any(k.admin for k in self.by_hash.values())

    def __len__(self) -> int:
        return len(self.by_hash)


def parse_keys_file(text: str, file: str) -> dict[str, Key]:
    doc = parse_yaml(text, file, env={})
    if doc.issues:
        raise PolicyError(doc.issues)
    try:
        parsed = _KeysFile.model_validate(doc.data if doc.data is not None else {})
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            issues.append(PolicyIssue(file, doc.line_of(loc), dotted(loc), msg))
        raise PolicyError(issues) from None
    out: dict[str, Key] = {}
    issues = []
    for i, e in enumerate(parsed.keys):
        if e.sha256 in out:
            issues.append(PolicyIssue(file, doc.line_of(("keys", i)), f"keys[{i}]", "the same key is listed twice"))
        out[e.sha256] = Key(e.tenant, e.name or f"{e.tenant}-{e.sha256[:8]}", e.admin, e.expires)
    if issues:
        raise PolicyError(issues)
    return out


def parse_env_keys(value: str) -> dict[str, Key]:
    out: dict[str, Key] = {}
    issues = []
    for i, item in enumerate(p.strip() for p in value.split(",")):
        if not item:
            continue
        parts = item.split(":")
        ok = len(parts) in (2, 3) and re.match(NAME, parts[0]) and _HEX.match(parts[1])
        if not ok or (len(parts) == 3 and parts[2] != "admin"):
            issues.append(
                PolicyIssue("ROUTER_API_KEYS", None, f"[{i}]", "expected tenant:sha256 or tenant:sha256:admin")
            )
            continue
        out[parts[1]] = Key(parts[0], f"{parts[0]}-{parts[1][:8]}", len(parts) == 3)
    if issues:
        raise PolicyError(issues)
    return out


def load_keys(keys_file: str | None, env_value: str | None) -> KeyStore:
    """Every configured key; a bad entry anywhere raises :class:`PolicyError` (file, line, what)."""
    keys: dict[str, Key] = {}
    if keys_file:
        try:
            with open(keys_file, encoding="utf-8") as f:
                text = f.read(MAX_FILE_BYTES + 1)
            if len(text) > MAX_FILE_BYTES:
                raise PolicyError([PolicyIssue(keys_file, None, "", f"the keys file is over {MAX_FILE_BYTES} bytes")])
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError([PolicyIssue(keys_file, None, "", f"cannot read the keys file: {exc}")]) from None
        keys.update(parse_keys_file(text, keys_file))
    if env_value:
        keys.update(parse_env_keys(env_value))
    return KeyStore(keys)
