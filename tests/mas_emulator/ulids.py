"""ULID generation and parsing with the rules of the Rust `ulid` crate that MAS uses.

Parsing accepts upper- and lower-case Crockford base32, rejects the letters
I, L, O and U, and drops the two bits that overflow 128 bits, as the crate does.
"""

import os
import threading

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 26

_DECODE = {}
for _index, _char in enumerate(ALPHABET):
    _DECODE[_char] = _index
    _DECODE[_char.lower()] = _index

_MASK_128 = (1 << 128) - 1
_MASK_80 = (1 << 80) - 1


class UlidError(ValueError):
    """A string that is not a ULID; the message is the one the Rust crate prints."""


def encode(value: int) -> str:
    """Encode a 128-bit integer as 26 Crockford base32 characters."""
    chars = []
    for _ in range(LENGTH):
        chars.append(ALPHABET[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


def decode(text: str) -> int:
    """Decode a ULID string; raise UlidError("invalid length" or "invalid character")."""
    if len(text.encode("utf-8")) != LENGTH:
        raise UlidError("invalid length")

    value = 0
    for char in text:
        digit = _DECODE.get(char)
        if digit is None:
            raise UlidError("invalid character")
        value = (value << 5) | digit

    return value & _MASK_128


def canonical(text: str) -> str:
    """Return the upper-case form of a ULID string, raising UlidError if it is invalid."""
    return encode(decode(text))


def timestamp_ms(ulid: str) -> int:
    """Return the millisecond timestamp stored in the first 48 bits of a ULID."""
    return decode(ulid) >> 80


class UlidGenerator:
    """Thread-safe ULID source that stays strictly increasing within one millisecond."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new(self, ms: int) -> str:
        """Return a ULID for the Unix time `ms` in milliseconds.

        Within the same millisecond the random part is incremented, so ids made in
        sequence sort in creation order, as MAS ids made by one process usually do.
        """
        ms = max(ms, 0)
        with self._lock:
            if ms == self._last_ms and self._last_random < _MASK_80:
                random_part = self._last_random + 1
            else:
                random_part = int.from_bytes(os.urandom(10), "big") >> 1
            self._last_ms = ms
            self._last_random = random_part
        return encode(((ms & ((1 << 48) - 1)) << 80) | random_part)
