"""The emulator's clock: real time plus an offset that tests can move forward."""

import datetime
import threading
import time

NS_PER_S = 1_000_000_000
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class Clock:
    """Wall-clock time in integer nanoseconds since the Unix epoch, shifted by an offset."""

    def __init__(self) -> None:
        self._offset_ns = 0
        self._frozen_ns: int | None = None
        self._lock = threading.Lock()

    @property
    def offset_s(self) -> float:
        return self._offset_ns / NS_PER_S

    @property
    def frozen(self) -> bool:
        return self._frozen_ns is not None

    def now_ns(self) -> int:
        base = self._frozen_ns if self._frozen_ns is not None else time.time_ns()
        return base + self._offset_ns

    def set_now(self, ns: int) -> None:
        """Shift the clock so that it reads `ns` now; it keeps running unless frozen."""
        with self._lock:
            base = self._frozen_ns if self._frozen_ns is not None else time.time_ns()
            self._offset_ns = ns - base

    def freeze(self) -> None:
        """Stop the clock at its current reading; advance() still moves it."""
        with self._lock:
            now = self.now_ns()
            self._frozen_ns = now
            self._offset_ns = 0

    def unfreeze(self) -> None:
        """Let the clock run again from its current reading."""
        with self._lock:
            if self._frozen_ns is None:
                return
            frozen_reading = self._frozen_ns + self._offset_ns
            self._frozen_ns = None
            self._offset_ns = frozen_reading - time.time_ns()

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds` (a negative value moves it back)."""
        with self._lock:
            self._offset_ns += int(round(seconds * NS_PER_S))

    def reset(self) -> None:
        """Return to real time: no offset and not frozen."""
        with self._lock:
            self._offset_ns = 0
            self._frozen_ns = None


def truncate_to_us(ns: int | None) -> int | None:
    """Drop the nanoseconds below one microsecond, as PostgreSQL storage does."""
    if ns is None:
        return None
    return ns - ns % 1000


def format_rfc3339(ns: int | None) -> str | None:
    """Format a UTC time the way chrono serialises DateTime<Utc>.

    The fraction has 0, 3, 6 or 9 digits: none when it is zero, otherwise the
    shortest of milli-, micro- or nanoseconds that represents it exactly.
    """
    if ns is None:
        return None

    seconds, fraction = divmod(ns, NS_PER_S)
    moment = _EPOCH + datetime.timedelta(seconds=seconds)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.year < 1000:
        text = f"{moment.year:04d}" + text[text.index("-"):]

    if fraction == 0:
        suffix = ""
    elif fraction % 1_000_000 == 0:
        suffix = f".{fraction // 1_000_000:03d}"
    elif fraction % 1000 == 0:
        suffix = f".{fraction // 1000:06d}"
    else:
        suffix = f".{fraction:09d}"
    return f"{text}{suffix}Z"


def datetime_to_ns(value: datetime.datetime) -> int:
    """Convert an aware datetime (naive ones are taken as UTC) to epoch nanoseconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000
