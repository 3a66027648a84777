"""A minimal HTTP/1.1 client that sends a request-target byte for byte.

aiohttp and yarl normalise "../" and percent-escapes in URLs, so tests that
must send paths like "/a/../b" or "%2E%2E" exactly use this client instead.
It only talks to the emulator on loopback.
"""

import asyncio
from dataclasses import dataclass


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names; repeated headers are joined with ", "
    body: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    def text(self) -> str:
        return self.body.decode("utf-8")


async def raw_request(
    host: str,
    port: int,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout_s: float = 10.0,
) -> RawResponse:
    """Send one request on a new connection and read the whole response."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        for name, value in (headers or {}).items():
            if name.lower() not in ("host", "connection", "content-length"):
                lines.append(f"{name}: {value}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + (body or b""))
        await writer.drain()

        raw = await asyncio.wait_for(reader.read(), timeout_s)
    finally:
        writer.close()

    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    _, status, reason = status_line.split(" ", 2)
    parsed: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        parsed[key] = f"{parsed[key]}, {value.strip()}" if key in parsed else value.strip()

    if "content-length" in parsed:
        payload = payload[: int(parsed["content-length"])]
    return RawResponse(status=int(status), reason=reason, headers=parsed, body=payload)
