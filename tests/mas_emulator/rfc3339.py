"""Parse date-times the way chrono 0.4 parses `DateTime<Utc>` from a JSON string.

chrono is lenient: fields may have fewer digits ("2030-1-2T3:4:5Z"), whitespace
may appear before the separators, the date and time may be split by "T", "t" or
a space, and the offset may be "Z", "z", "UTC", "+hh:mm", "+hhmm" or "+hh mm".
The error messages are chrono's ParseError texts.
"""

import datetime

from .clock import NS_PER_S, datetime_to_ns

OUT_OF_RANGE = "input is out of range"
INVALID = "input contains invalid characters"
TOO_SHORT = "premature end of input"
TOO_LONG = "trailing input"


class DateTimeParseError(ValueError):
    """A string chrono would reject; the message is chrono's text for the failure."""


def _number(text: str, max_digits: int) -> tuple[str, int]:
    """Read 1 to `max_digits` ASCII digits from the start of `text`."""
    if not text:
        raise DateTimeParseError(TOO_SHORT)
    if not text[0].isascii() or not text[0].isdigit():
        raise DateTimeParseError(INVALID)

    end = 0
    while end < len(text) and end < max_digits and text[end].isascii() and text[end].isdigit():
        end += 1
    return text[end:], int(text[:end])


def _literal(text: str, char: str) -> str:
    text = text.lstrip()
    if not text:
        raise DateTimeParseError(TOO_SHORT)
    if text[0] != char:
        raise DateTimeParseError(INVALID)
    return text[1:]


def _two_digits(text: str) -> tuple[str, int]:
    if len(text) < 2:
        raise DateTimeParseError(TOO_SHORT)
    if not (text[:2].isascii() and text[:2].isdigit()):
        raise DateTimeParseError(INVALID)
    return text[2:], int(text[:2])


def _parse_offset_s(text: str) -> tuple[str, int]:
    if text[:3].upper() == "UTC":
        return text[3:], 0
    if text[:1] in ("Z", "z"):
        return text[1:], 0
    if not text:
        raise DateTimeParseError(TOO_SHORT)

    sign_char = text[0]
    if sign_char == "+":
        sign = 1
    elif sign_char in ("-", "\u2212"):
        sign = -1
    else:
        raise DateTimeParseError(INVALID)

    text, hours = _two_digits(text[1:])
    text = text.lstrip(": \t\n\r")
    text, minutes = _two_digits(text)
    if minutes >= 60:
        raise DateTimeParseError(OUT_OF_RANGE)
    return text, sign * (hours * 3600 + minutes * 60)


def parse_datetime_ns(text: str) -> int:
    """Return the UTC time in `text` as epoch nanoseconds or raise DateTimeParseError."""
    rest = text.lstrip()

    if rest[:1] in ("+", "-"):
        sign = -1 if rest[0] == "-" else 1
        rest, year = _number(rest[1:], 9)
        year *= sign
    else:
        rest, year = _number(rest, 4)
    rest = _literal(rest, "-")
    rest, month = _number(rest.lstrip(), 2)
    rest = _literal(rest, "-")
    rest, day = _number(rest.lstrip(), 2)

    if not rest:
        raise DateTimeParseError(TOO_SHORT)
    if rest[0] not in ("T", "t", " "):
        raise DateTimeParseError(INVALID)
    rest = rest[1:]

    rest, hour = _number(rest.lstrip(), 2)
    rest = _literal(rest, ":")
    rest, minute = _number(rest.lstrip(), 2)
    rest = _literal(rest, ":")
    rest, second = _number(rest.lstrip(), 2)

    nanos = 0
    if rest.startswith("."):
        digits_text = rest[1:]
        count = 0
        while count < len(digits_text) and digits_text[count].isascii() and digits_text[count].isdigit():
            count += 1
        if count == 0:
            raise DateTimeParseError(TOO_SHORT if not digits_text else INVALID)
        nanos = int(digits_text[:min(count, 9)].ljust(9, "0"))
        rest = digits_text[count:]

    rest, offset_s = _parse_offset_s(rest.lstrip())
    if rest.strip():
        raise DateTimeParseError(TOO_LONG)

    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59):
        raise DateTimeParseError(OUT_OF_RANGE)
    # NOTE: chrono accepts second 60 as a leap second and years outside
    # 1..9999; the emulator reports both as out of range instead.
    if second > 59 or not 1 <= year <= 9999 or abs(offset_s) >= 86_400:
        raise DateTimeParseError(OUT_OF_RANGE)

    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone.utc)
    except ValueError:
        raise DateTimeParseError(OUT_OF_RANGE) from None

    return datetime_to_ns(moment) - offset_s * NS_PER_S + nanos
