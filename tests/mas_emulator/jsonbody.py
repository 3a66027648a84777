"""Decode admin API request bodies with the error texts of axum's `Json` extractor.

MAS deserialises bodies with serde_json into typed structs, and axum turns the
failure into a text/plain response: a syntax error or early end of input gives
400 "Failed to parse the request body as JSON: ...", a value of the wrong type
gives 422 "Failed to deserialize the JSON body into the target type: ...".
Both end with serde_json's " at line L column C". This module is a small
recursive-descent parser that reproduces those messages and positions for the
two request structs of the registration token API.
"""

import decimal
import unicodedata
from dataclasses import dataclass

from .rfc3339 import DateTimeParseError, parse_datetime_ns

U32_MAX = 2**32 - 1


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "string", "u32" or "datetime", each nullable


@dataclass(frozen=True)
class Struct:
    name: str
    fields: tuple[Field, ...]
    # True when every field has a serde default, so a short JSON array is accepted.
    fields_default: bool


ADD_TOKEN_REQUEST = Struct(
    "AddUserRegistrationTokenRequest",
    (Field("token", "string"), Field("usage_limit", "u32"), Field("expires_at", "datetime")),
    fields_default=False,
)
EDIT_TOKEN_REQUEST = Struct(
    "EditUserRegistrationTokenRequest",
    (Field("expires_at", "datetime"), Field("usage_limit", "u32")),
    fields_default=True,
)

_EXPECTED = {
    "string": "a string",
    "u32": "u32",
    "datetime": "an RFC 3339 formatted date and time string",
}


class BodyError(Exception):
    """A body that MAS rejects; `status` and `text` form the text/plain response."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class _ParseError(Exception):
    def __init__(self, syntax: bool, message: str, line: int, column: int, path: str = "") -> None:
        super().__init__(message)
        self.syntax = syntax
        self.message = message
        self.line = line
        self.column = column
        self.path = path

    def render(self) -> str:
        prefix = f"{self.path}: " if self.path else ""
        return f"{prefix}{self.message} at line {self.line} column {self.column}"


def rust_debug_str(text: str) -> str:
    """Quote a string the way Rust's `{:?}` formats a `str`."""
    out = ['"']
    for char in text:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif char == "\0":
            out.append("\\0")
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or (
            unicodedata.category(char) == "Zs" and char != " "
        ):
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def rust_float_display(value: float) -> str:
    """Format a float as serde's "floating point `...`" does: no exponent, always a point."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"

    text = format(decimal.Decimal(repr(value)), "f")
    if "." not in text:
        text += ".0"
    return text


def _describe_number(number: tuple[str, object]) -> str:
    kind, value = number
    if kind == "float":
        return f"floating point `{rust_float_display(value)}`"
    return f"integer `{value}`"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.index = 0

    # Positions follow serde_json: `error` points at the last consumed byte,
    # `peek_error` at the byte that was looked at but not consumed.
    def _position(self, index: int) -> tuple[int, int]:
        line = 1
        column = 0
        for byte in self.data[:index]:
            if byte == 0x0A:
                line += 1
                column = 0
            else:
                column += 1
        return line, column

    def error(self, message: str, syntax: bool = True, path: str = "") -> _ParseError:
        line, column = self._position(self.index)
        return _ParseError(syntax, message, line, column, path)

    def peek_error(self, message: str, path: str = "") -> _ParseError:
        line, column = self._position(min(self.index + 1, len(self.data)))
        return _ParseError(True, message, line, column, path)

    def peek(self) -> int | None:
        if self.index < len(self.data):
            return self.data[self.index]
        return None

    def next(self) -> int | None:
        byte = self.peek()
        if byte is not None:
            self.index += 1
        return byte

    def skip_whitespace(self) -> int | None:
        while self.index < len(self.data) and self.data[self.index] in b" \t\n\r":
            self.index += 1
        return self.peek()

    def ident(self, rest: bytes) -> None:
        for expected in rest:
            byte = self.next()
            if byte is None:
                raise self.error("EOF while parsing a value")
            if byte != expected:
                raise self.error("expected ident")

    def string(self) -> str:
        """Read a string body after its opening quote has been consumed."""
        out = bytearray()
        while True:
            byte = self.next()
            if byte is None:
                raise self.error("EOF while parsing a string")
            if byte == 0x22:
                break
            if byte < 0x20:
                raise self.error("control character (\\u0000-\\u001F) found while parsing a string")
            if byte != 0x5C:
                out.append(byte)
                continue

            escape = self.next()
            if escape is None:
                raise self.error("EOF while parsing a string")
            simple = {0x22: b'"', 0x5C: b"\\", 0x2F: b"/", 0x62: b"\b", 0x66: b"\f",
                      0x6E: b"\n", 0x72: b"\r", 0x74: b"\t"}
            if escape in simple:
                out += simple[escape]
            elif escape == 0x75:
                out += self._unicode_escape().encode("utf-8", "surrogatepass")
            else:
                raise self.error("invalid escape")

        try:
            return out.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("invalid unicode code point") from None

    def _hex4(self) -> int:
        value = 0
        for _ in range(4):
            byte = self.next()
            if byte is None:
                raise self.error("EOF while parsing a string")
            char = chr(byte)
            if char not in "0123456789abcdefABCDEF":
                raise self.error("invalid escape")
            value = value * 16 + int(char, 16)
        return value

    def _unicode_escape(self) -> str:
        first = self._hex4()
        if 0xDC00 <= first <= 0xDFFF:
            raise self.error("lone leading surrogate in hex escape")
        if not 0xD800 <= first <= 0xDBFF:
            return chr(first)

        if self.next() != 0x5C or self.next() != 0x75:
            raise self.error("unexpected end of hex escape")
        second = self._hex4()
        if not 0xDC00 <= second <= 0xDFFF:
            raise self.error("lone leading surrogate in hex escape")
        return chr(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))

    def number(self) -> tuple[str, object]:
        """Read a number whose first byte is next; return ("int" or "float", value)."""
        start = self.index
        negative = self.peek() == 0x2D
        if negative:
            self.index += 1

        first = self.next()
        if first is None:
            raise self.error("EOF while parsing a value")
        if first == 0x30:
            following = self.peek()
            if following is not None and 0x30 <= following <= 0x39:
                raise self.peek_error("invalid number")
        elif not 0x31 <= first <= 0x39:
            raise self.error("invalid number")
        while (byte := self.peek()) is not None and 0x30 <= byte <= 0x39:
            self.index += 1

        is_float = False
        if self.peek() == 0x2E:
            is_float = True
            self.index += 1
            if (byte := self.peek()) is None or not 0x30 <= byte <= 0x39:
                raise self.peek_error("EOF while parsing a value" if byte is None else "invalid number")
            while (byte := self.peek()) is not None and 0x30 <= byte <= 0x39:
                self.index += 1

        if self.peek() in (0x65, 0x45):
            is_float = True
            self.index += 1
            if self.peek() in (0x2B, 0x2D):
                self.index += 1
            byte = self.next()
            if byte is None:
                raise self.error("EOF while parsing a value")
            if not 0x30 <= byte <= 0x39:
                raise self.error("invalid number")
            while (byte := self.peek()) is not None and 0x30 <= byte <= 0x39:
                self.index += 1

        text = self.data[start:self.index].decode("ascii")
        if not is_float:
            value = int(text)
            # serde_json reads "-0" and integers beyond i64/u64 as floats.
            if -(2**63) <= value <= 2**64 - 1 and text != "-0":
                return "int", value

        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise self.error("number out of range")
        return "float", value

    def unexpected_scalar(self) -> str:
        """Consume a value that has the wrong type and describe it like serde's `Unexpected`."""
        byte = self.peek()
        if byte == 0x6E:
            self.index += 1
            self.ident(b"ull")
            return "null"
        if byte == 0x74:
            self.index += 1
            self.ident(b"rue")
            return "boolean `true`"
        if byte == 0x66:
            self.index += 1
            self.ident(b"alse")
            return "boolean `false`"
        if byte == 0x2D or (byte is not None and 0x30 <= byte <= 0x39):
            return _describe_number(self.number())
        if byte == 0x22:
            self.index += 1
            return f"string {rust_debug_str(self.string())}"
        if byte == 0x5B:
            return "sequence"
        if byte == 0x7B:
            return "map"
        raise self.peek_error("expected value")

    def ignore_value(self, depth: int = 0) -> None:
        """Check the syntax of a value that no struct field takes, and skip it."""
        if depth > 127:
            raise self.error("recursion limit exceeded")

        byte = self.skip_whitespace()
        if byte is None:
            raise self.peek_error("EOF while parsing a value")
        if byte in (0x6E, 0x74, 0x66):
            self.index += 1
            self.ident({0x6E: b"ull", 0x74: b"rue", 0x66: b"alse"}[byte])
        elif byte == 0x2D or 0x30 <= byte <= 0x39:
            self.number()
        elif byte == 0x22:
            self.index += 1
            self.string()
        elif byte == 0x5B:
            self.index += 1
            self._ignore_items(depth, 0x5D, "list", "`,` or `]`", keyed=False)
        elif byte == 0x7B:
            self.index += 1
            self._ignore_items(depth, 0x7D, "object", "`,` or `}`", keyed=True)
        else:
            raise self.peek_error("expected value")

    def _ignore_items(self, depth: int, close: int, noun: str, separators: str, keyed: bool) -> None:
        first = True
        while True:
            byte = self.skip_whitespace()
            if byte is None:
                raise self.peek_error(f"EOF while parsing {'an' if noun == 'object' else 'a'} {noun}")
            if byte == close:
                self.index += 1
                return
            if not first:
                if byte != 0x2C:
                    raise self.peek_error(f"expected {separators}")
                self.index += 1
                byte = self.skip_whitespace()
                if byte == close:
                    raise self.peek_error("trailing comma")
            first = False

            if keyed:
                if byte is None:
                    raise self.peek_error("EOF while parsing a value")
                if byte != 0x22:
                    raise self.peek_error("key must be a string")
                self.index += 1
                self.string()
                self.colon()
            self.ignore_value(depth + 1)

    def colon(self, path: str = "") -> None:
        byte = self.skip_whitespace()
        if byte == 0x3A:
            self.index += 1
            return
        if byte is None:
            raise self.peek_error("EOF while parsing an object", path)
        raise self.peek_error("expected `:`", path)


def _read_field(reader: _Reader, field: Field) -> object:
    """Read one nullable field value; errors name the field as their path."""
    path = field.name
    try:
        byte = reader.skip_whitespace()
        if byte is None:
            raise reader.peek_error("EOF while parsing a value")
        if byte == 0x6E:
            reader.index += 1
            reader.ident(b"ull")
            return None

        if field.kind == "u32":
            if byte == 0x2D or 0x30 <= byte <= 0x39:
                kind, value = reader.number()
                if kind == "float":
                    raise reader.error(
                        f"invalid type: {_describe_number((kind, value))}, expected u32", syntax=False
                    )
                if not 0 <= value <= U32_MAX:
                    raise reader.error(f"invalid value: integer `{value}`, expected u32", syntax=False)
                return value
        elif byte == 0x22:
            reader.index += 1
            text = reader.string()
            if field.kind == "string":
                return text
            try:
                return parse_datetime_ns(text)
            except DateTimeParseError as error:
                raise reader.error(str(error), syntax=False) from None

        unexpected = reader.unexpected_scalar()
        raise reader.error(f"invalid type: {unexpected}, expected {_EXPECTED[field.kind]}", syntax=False)
    except _ParseError as error:
        error.path = error.path or path
        raise


def _read_map(reader: _Reader, struct: Struct) -> dict:
    by_name = {field.name: field for field in struct.fields}
    values: dict = {}
    first = True

    while True:
        byte = reader.skip_whitespace()
        if byte == 0x7D:
            reader.index += 1
            return values
        if byte is None:
            raise reader.peek_error("EOF while parsing an object")
        if not first:
            if byte != 0x2C:
                raise reader.peek_error("expected `,` or `}`")
            reader.index += 1
            byte = reader.skip_whitespace()
            if byte == 0x7D:
                raise reader.peek_error("trailing comma")
        first = False

        if byte is None:
            raise reader.peek_error("EOF while parsing a value")
        if byte != 0x22:
            raise reader.peek_error("key must be a string")
        reader.index += 1
        key = reader.string()

        field = by_name.get(key)
        if field is not None and key in values:
            raise reader.error(f"duplicate field `{key}`", syntax=False)

        reader.colon(path=key)
        if field is None:
            try:
                reader.ignore_value()
            except _ParseError as error:
                error.path = error.path or key
                raise
        else:
            values[key] = _read_field(reader, field)


def _read_sequence(reader: _Reader, struct: Struct) -> dict:
    """Read a JSON array as the struct's fields in order, as serde's derive allows."""
    values: dict = {}
    for position, field in enumerate(struct.fields):
        byte = reader.skip_whitespace()
        if byte is None:
            raise reader.peek_error("EOF while parsing a list")
        if byte == 0x5D:
            if struct.fields_default:
                break
            raise reader.error(
                f"invalid length {position}, expected struct {struct.name} with {len(struct.fields)} elements",
                syntax=False,
            )
        if position > 0:
            if byte != 0x2C:
                raise reader.peek_error("expected `,` or `]`")
            reader.index += 1
            if reader.skip_whitespace() == 0x5D:
                raise reader.peek_error("trailing comma")
        try:
            values[field.name] = _read_field(reader, field)
        except _ParseError as error:
            error.path = str(position)
            raise

    byte = reader.skip_whitespace()
    if byte == 0x5D:
        reader.index += 1
        return values
    if byte is None:
        raise reader.peek_error("EOF while parsing a list")
    if byte == 0x2C:
        reader.index += 1
        if reader.skip_whitespace() == 0x5D:
            raise reader.peek_error("trailing comma")
    raise reader.peek_error("trailing characters")


def parse_body(data: bytes, struct: Struct) -> dict:
    """Decode `data` into a dict of the struct fields that are present (null included).

    Raise BodyError with MAS's status and text/plain message when the body is
    not valid JSON or does not fit the struct. Unknown keys are ignored.
    """
    reader = _Reader(data)
    try:
        byte = reader.skip_whitespace()
        if byte is None:
            raise reader.peek_error("EOF while parsing a value")
        if byte == 0x7B:
            reader.index += 1
            values = _read_map(reader, struct)
        elif byte == 0x5B:
            reader.index += 1
            values = _read_sequence(reader, struct)
        else:
            unexpected = reader.unexpected_scalar()
            raise reader.error(f"invalid type: {unexpected}, expected struct {struct.name}", syntax=False)

        if reader.skip_whitespace() is not None:
            raise reader.peek_error("trailing characters")
    except _ParseError as error:
        if error.syntax:
            raise BodyError(400, f"Failed to parse the request body as JSON: {error.render()}") from None
        raise BodyError(422, f"Failed to deserialize the JSON body into the target type: {error.render()}") from None

    return values


def is_json_content_type(value: str | None) -> bool:
    """Return whether a Content-Type header is JSON in the sense of axum's extractor."""
    if not value:
        return False
    mime = value.split(";", 1)[0].strip().lower()
    if "/" not in mime:
        return False
    main_type, subtype = mime.split("/", 1)
    return main_type == "application" and (subtype == "json" or subtype.endswith("+json"))
