"""Perform the core's HTTP requests with aiohttp and keep the MAS access token.

The core never receives a credential: this module adds the Authorization header
(HTTP Basic with the client credentials, Bearer with the stored access token,
or none for OpenID discovery) and takes the access token out of token
endpoint responses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Mapping, Optional
from urllib.parse import urlsplit

import aiohttp

from .protocol import HttpFailure, HttpOutcome, HttpRequest, HttpResponse

# Maximum response body size. A MAS list page of 1000 tokens is about 300 KB,
# so a larger body comes from a misconfigured URL, not from MAS. The engine's
# fuel and memory limits are sized for bodies up to this size.
MAX_BODY_BYTES = 8 * 1024 * 1024

_READ_CHUNK_BYTES = 64 * 1024


def create_session(headers: Optional[Mapping[str, str]] = None) -> aiohttp.ClientSession:
    """Create an aiohttp session for MAS requests that never sends a request twice by itself.

    aiohttp 3.14.5 resends a GET, PUT or DELETE once when the connection is
    reset before a response. The core already retries a GET once, so MAS saw
    a GET up to four times, and it saw an edit's PUT twice although MAS may
    have applied the first one. Retries are the core's decision alone.
    """
    session = aiohttp.ClientSession(headers=headers)
    # NOTE: `_retry_connection` is private (aiohttp 3.14.5). If a later aiohttp
    # drops it, the reset cases in tests/test_faults.py fail.
    session._retry_connection = False
    return session


class Transport:
    """Send HttpRequests for one plugin instance and hold its client credentials and access token."""

    def __init__(self, session: aiohttp.ClientSession, log: logging.Logger) -> None:
        self._session = session
        self._log = log
        self._client_id = ""
        self._client_secret = ""
        self._token_endpoint = ""
        self._access_token: Optional[str] = None

    def set_credentials(self, token_endpoint: str, client_id: str, client_secret: str) -> None:
        """Set the client credentials, dropping the stored access token if any of them changed.

        `token_endpoint` is only compared: a token from another endpoint is
        not reused. It may be a MAS base URL when discovery finds the endpoint.
        """
        current = (self._token_endpoint, self._client_id, self._client_secret)
        if (token_endpoint, client_id, client_secret) != current:
            self._access_token = None
        self._token_endpoint = token_endpoint
        self._client_id = client_id
        self._client_secret = client_secret

    @property
    def has_access_token(self) -> bool:
        return self._access_token is not None

    async def perform(self, request: HttpRequest) -> HttpOutcome:
        """Send one request and return its response, or the reason there is none.

        Timeouts and connection errors become HttpFailure. Their messages are
        written here from the URL's host and the error class, never copied from
        the exception, because the core may show them in the room.
        """
        url = urlsplit(request.url)
        headers = {**request.headers, **self._authorization(request)}
        timeout = aiohttp.ClientTimeout(total=request.timeout_ms / 1000)
        data = request.body.encode("utf-8") if request.body is not None else None

        try:
            async with self._session.request(
                request.method,
                request.url,
                headers=headers,
                data=data,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                return await self._read_response(request, response)

        except asyncio.TimeoutError:
            seconds = request.timeout_ms / 1000
            self._log.warning("%s %s timed out after %g s", request.method, url.path, seconds)
            return HttpFailure(kind="timeout", message=f"no response from {url.hostname} within {seconds:g} s")

        except (aiohttp.ClientError, OSError, ValueError) as error:
            self._log.warning("%s %s failed: %s", request.method, url.path, _describe(error))
            return HttpFailure(kind="connection", message=_connection_message(error, url.hostname or "?"))

    def _authorization(self, request: HttpRequest) -> dict[str, str]:
        if request.auth == "none":
            return {}

        if request.auth == "client":
            # Not form-encoded, although RFC 6749 section 2.3.1 requires it: MAS 1.22
            # compares the decoded values with its config exactly as sent.
            pair = f"{self._client_id}:{self._client_secret}"
            return {"Authorization": "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")}

        if self._access_token is None:
            # The core asked for a bearer request before a token was stored
            # (for example after the credentials changed). MAS rejects the
            # request, and the core fetches a new token.
            self._log.warning("No access token is stored, so the request goes without one")
            return {}
        return {"Authorization": f"Bearer {self._access_token}"}

    async def _read_response(self, request: HttpRequest, response: aiohttp.ClientResponse) -> HttpOutcome:
        body = await _read_capped(response)
        if body is None:
            return HttpFailure(
                kind="connection",
                message=f"the response body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB",
            )

        text = body.decode("utf-8", errors="replace")
        content_type = response.content_type if "Content-Type" in response.headers else None
        stored = False
        if request.auth == "client" and response.status == 200:
            text, stored = self._take_access_token(text)

        return HttpResponse(
            status=response.status,
            content_type=content_type,
            body=text,
            retry_after=response.headers.get("Retry-After"),
            access_token_stored=stored,
        )

    def _take_access_token(self, body: str) -> tuple[str, bool]:
        """Store the access_token of a token endpoint response and return the body without it."""
        try:
            document = json.loads(body)
        except json.JSONDecodeError:
            return body, False

        if not isinstance(document, dict) or not isinstance(document.get("access_token"), str):
            return body, False

        self._access_token = document.pop("access_token")
        return json.dumps(document), True


async def _read_capped(response: aiohttp.ClientResponse) -> Optional[bytes]:
    """Read the whole body, or return None as soon as it exceeds MAX_BODY_BYTES."""
    if response.content_length is not None and response.content_length > MAX_BODY_BYTES:
        return None

    chunks = []
    size = 0
    async for chunk in response.content.iter_chunked(_READ_CHUNK_BYTES):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _connection_message(error: BaseException, host: str) -> str:
    if isinstance(error, aiohttp.ClientPayloadError):
        return f"the response from {host} could not be read in full"
    if isinstance(error, aiohttp.ClientSSLError):
        return f"the TLS connection to {host} failed"
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"could not connect to {host}"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return f"{host} closed the connection"
    if isinstance(error, aiohttp.InvalidURL):
        return "the URL is invalid"
    return f"the connection to {host} failed"


def _describe(error: BaseException) -> str:
    # aiohttp's messages name the host, port and OS error, and no credentials.
    return f"{type(error).__name__}: {error}"
