"""API keys: high-entropy secrets stored only as SHA-256, with scopes and revocation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import ApiKey, utcnow

SCOPES = ("stats:read", "simulate", "records:read", "etl:write", "admin")
KEY_PREFIX = "nhis_"
ADMIN_EXCLUDES = frozenset({"records:read"})


class KeyError_(ValueError):
    """A bad key-management request (unknown scope, duplicate name, unknown name)."""


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """`*` is any valid key. `admin` implies every scope except `records:read`: reading
        person-level records must be granted explicitly, even to the operator (docs/SECURITY.md)."""
        if scope == "*" or scope in self.scopes:
            return True
        return "admin" in self.scopes and scope not in ADMIN_EXCLUDES


def hash_key(clear: str) -> str:
    return hashlib.sha256(clear.encode("utf-8")).hexdigest()


def parse_scopes(text: str | list[str]) -> list[str]:
    items = text.split(",") if isinstance(text, str) else list(text)
    scopes = sorted({s.strip() for s in items if s.strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise KeyError_(f"unknown or missing scopes {unknown}; choose from {', '.join(SCOPES)}")
    return scopes


def create_key(session: Session, name: str, scopes: str | list[str]) -> str:
    """Create a key and return the clear text; it is never stored and cannot be shown again."""
    scope_list = parse_scopes(scopes)
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise KeyError_(f"a key named {name!r} already exists")
    prefix = secrets.token_hex(4)
    clear = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    session.add(ApiKey(name=name, prefix=prefix, key_hash=hash_key(clear), scopes=",".join(scope_list)))
    session.flush()
    return clear


def revoke_key(session: Session, name: str) -> None:
    key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise KeyError_(f"no key named {name!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def lookup_key(session: Session, clear: str) -> KeyInfo | None:
    """The key's info if it exists and is not revoked; lookups go by hash, never by clear text."""
    if not clear or len(clear) > 200:
        return None
    return lookup_key_hash(session, hash_key(clear))


def lookup_key_hash(session: Session, digest: str) -> KeyInfo | None:
    """As `lookup_key`, given the SHA-256 hex digest (what the API's key cache holds)."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if key is None or key.revoked_at is not None:
        return None
    key.last_used_at = utcnow()
    return KeyInfo(id=key.id, name=key.name, scopes=frozenset(key.scopes.split(",")))
