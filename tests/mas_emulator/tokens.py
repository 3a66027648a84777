"""Registration tokens and the in-memory store that keeps them in ULID order."""

import bisect
import os
import string
import threading
from dataclasses import dataclass, field

from .clock import format_rfc3339

TOKEN_ALPHABET = string.ascii_letters + string.digits
RESOURCE_TYPE = "user-registration_token"
COLLECTION_PATH = "/api/admin/v1/user-registration-tokens"


def generate_token_string(length: int = 12) -> str:
    """Return random letters and digits, 12 by default like the tokens MAS generates."""
    chars: list[str] = []
    while len(chars) < length:
        # Bytes from 248 up are skipped, so that `byte % 62` picks each character equally often.
        chars.extend(TOKEN_ALPHABET[byte % 62] for byte in os.urandom(length * 2) if byte < 248)
    return "".join(chars[:length])


@dataclass
class RegistrationToken:
    """One registration token; times are epoch nanoseconds in UTC, or None."""

    id: str
    token: str
    usage_limit: int | None = None
    times_used: int = 0
    created_at_ns: int = 0
    last_used_at_ns: int | None = None
    expires_at_ns: int | None = None
    revoked_at_ns: int | None = None
    # Set by TokenStore so that any attribute change invalidates its list caches.
    _store: "TokenStore | None" = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        store = self.__dict__.get("_store")
        if store is not None and name == "token":
            store.rename(self.__dict__["token"], value, self.id)
        super().__setattr__(name, value)
        if store is not None and name != "_store":
            store.mark_changed()

    def is_expired(self, now_ns: int) -> bool:
        return self.expires_at_ns is not None and self.expires_at_ns < now_ns

    def is_valid(self, now_ns: int) -> bool:
        """Apply MAS's rule: not revoked, not past expires_at, and uses left."""
        if self.revoked_at_ns is not None:
            return False
        if self.expires_at_ns is not None and now_ns >= self.expires_at_ns:
            return False
        if self.usage_limit is not None and self.times_used >= self.usage_limit:
            return False
        return True

    def attributes(self, now_ns: int) -> dict:
        return {
            "token": self.token,
            "valid": self.is_valid(now_ns),
            "usage_limit": self.usage_limit,
            "times_used": self.times_used,
            "created_at": format_rfc3339(self.created_at_ns),
            "last_used_at": format_rfc3339(self.last_used_at_ns),
            "expires_at": format_rfc3339(self.expires_at_ns),
            "revoked_at": format_rfc3339(self.revoked_at_ns),
        }

    def resource(self, now_ns: int, overrides: dict | None = None) -> dict:
        """Return the JSON:API resource object, with `overrides` replacing attributes."""
        attributes = self.attributes(now_ns)
        if overrides:
            attributes.update(overrides)
        return {
            "type": RESOURCE_TYPE,
            "id": self.id,
            "attributes": attributes,
            "links": {"self": f"{COLLECTION_PATH}/{self.id}"},
        }

    def to_dict(self, now_ns: int) -> dict:
        """Return the id plus the attributes, as the control API reports a token."""
        return {"id": self.id, **self.attributes(now_ns)}


class TokenStore:
    """Tokens by id, plus their ids in ascending order for cursor pagination."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.by_id: dict[str, RegistrationToken] = {}
        self.sorted_ids: list[str] = []
        self.id_by_string: dict[str, str] = {}
        self.version = 0

    def mark_changed(self) -> None:
        self.version += 1

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, token: RegistrationToken) -> None:
        with self.lock:
            if token.id in self.by_id:
                raise ValueError(f"a registration token with id {token.id} already exists")
            if token.token in self.id_by_string:
                raise ValueError(f"a registration token with the string {token.token!r} already exists")
            token._store = self
            self.by_id[token.id] = token
            self.id_by_string[token.token] = token.id
            if not self.sorted_ids or token.id > self.sorted_ids[-1]:
                self.sorted_ids.append(token.id)
            else:
                bisect.insort(self.sorted_ids, token.id)
            self.mark_changed()

    def get(self, token_id: str) -> RegistrationToken | None:
        return self.by_id.get(token_id)

    def rename(self, old: str, new: object, token_id: str) -> None:
        """Move a token's entry in the string index; raise ValueError on a duplicate."""
        if not isinstance(new, str):
            raise TypeError("a registration token string must be a str")
        with self.lock:
            if new != old and new in self.id_by_string:
                raise ValueError(f"a registration token with the string {new!r} already exists")
            self.id_by_string.pop(old, None)
            self.id_by_string[new] = token_id

    def find_by_string(self, token_string: str) -> RegistrationToken | None:
        token_id = self.id_by_string.get(token_string)
        return None if token_id is None else self.by_id[token_id]

    def clear(self) -> None:
        with self.lock:
            for token in self.by_id.values():
                token._store = None
            self.by_id.clear()
            self.sorted_ids.clear()
            self.id_by_string.clear()
            self.mark_changed()
