"""Tests of the shim's HTTP transport against a small aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import AsyncIterator

import aiohttp
import pytest_asyncio
from aiohttp import web

from mas_token_bot import transport as transport_module
from mas_token_bot.protocol import HttpFailure, HttpRequest, HttpResponse
from mas_token_bot.transport import Transport

CLIENT_ID = "client id/1"
CLIENT_SECRET = "s3cret:+&="
ACCESS_TOKEN = "mat_transporttesttoken0123456789"


class Recorder:
    """The requests the test server received, with their headers."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []


@pytest_asyncio.fixture
async def server(unused_tcp_port: int) -> AsyncIterator[tuple[str, Recorder]]:
    recorder = Recorder()

    async def record(request: web.Request) -> None:
        recorder.headers.append(dict(request.headers))

    async def token(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300})

    async def echo(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"ok": True}, headers={"Retry-After": "7"}, status=429)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"x" * (1024 * 1024)
        for _ in range(20):
            await response.write(chunk)
        return response

    app = web.Application()
    app.router.add_post("/oauth2/token", token)
    app.router.add_get("/echo", echo)
    app.router.add_get("/slow", slow)
    app.router.add_post("/redirect", redirect)
    app.router.add_get("/huge", huge)

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{unused_tcp_port}", recorder
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def transport() -> AsyncIterator[Transport]:
    async with aiohttp.ClientSession() as session:
        sender = Transport(session, logging.getLogger("test.transport"))
        sender.set_credentials("http://127.0.0.1/oauth2/token", CLIENT_ID, CLIENT_SECRET)
        yield sender


def _request(url: str, method: str = "GET", auth: str = "bearer", timeout_ms: int = 5000) -> HttpRequest:
    return HttpRequest(method=method, url=url, auth=auth, timeout_ms=timeout_ms, headers={"accept": "application/json"}, body=None)


async def test_token_response_stored_and_removed(server: tuple[str, Recorder], transport: Transport) -> None:
    base, recorder = server

    outcome = await transport.perform(_request(f"{base}/oauth2/token", method="POST", auth="client"))

    assert isinstance(outcome, HttpResponse)
    assert outcome.access_token_stored is True
    assert ACCESS_TOKEN not in outcome.body
    assert json.loads(outcome.body) == {"token_type": "Bearer", "expires_in": 300}
    assert transport.has_access_token
    # MAS 1.22 compares the values exactly as sent, so they are not form-encoded.
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert recorder.headers[0]["Authorization"] == f"Basic {expected}"


async def test_bearer_uses_stored_token(server: tuple[str, Recorder], transport: Transport) -> None:
    base, recorder = server
    await transport.perform(_request(f"{base}/oauth2/token", method="POST", auth="client"))

    outcome = await transport.perform(_request(f"{base}/echo"))

    assert isinstance(outcome, HttpResponse)
    assert recorder.headers[1]["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert outcome.status == 429
    assert outcome.retry_after == "7"
    assert outcome.content_type == "application/json"
    assert outcome.access_token_stored is False


async def test_auth_none_sends_no_authorization(server: tuple[str, Recorder], transport: Transport) -> None:
    base, recorder = server
    await transport.perform(_request(f"{base}/oauth2/token", method="POST", auth="client"))

    await transport.perform(_request(f"{base}/echo", auth="none"))

    assert "Authorization" not in recorder.headers[1]


async def test_bearer_response_keeps_access_token_key(server: tuple[str, Recorder], transport: Transport) -> None:
    base, _ = server

    # Only "client" requests hand over a token: a bearer request's body passes unchanged.
    outcome = await transport.perform(_request(f"{base}/oauth2/token", method="POST", auth="bearer"))

    assert isinstance(outcome, HttpResponse)
    assert outcome.access_token_stored is False
    assert ACCESS_TOKEN in outcome.body


async def test_credentials_change_drops_token(server: tuple[str, Recorder], transport: Transport) -> None:
    base, _ = server
    await transport.perform(_request(f"{base}/oauth2/token", method="POST", auth="client"))

    transport.set_credentials("http://127.0.0.1/oauth2/token", CLIENT_ID, "another secret")

    assert not transport.has_access_token


async def test_timeout_becomes_timeout_failure(server: tuple[str, Recorder], transport: Transport) -> None:
    base, _ = server

    outcome = await transport.perform(_request(f"{base}/slow", timeout_ms=200))

    assert isinstance(outcome, HttpFailure)
    assert outcome.kind == "timeout"
    assert "0.2 s" in outcome.message


async def test_refused_connection_becomes_failure(unused_tcp_port: int, transport: Transport) -> None:
    outcome = await transport.perform(_request(f"http://127.0.0.1:{unused_tcp_port}/nothing"))

    assert isinstance(outcome, HttpFailure)
    assert outcome.kind == "connection"
    assert outcome.message == "could not connect to 127.0.0.1"


async def test_redirect_not_followed(server: tuple[str, Recorder], transport: Transport) -> None:
    base, _ = server

    outcome = await transport.perform(_request(f"{base}/redirect", method="POST"))

    assert isinstance(outcome, HttpResponse)
    assert outcome.status == 302


async def test_oversized_body_is_connection_failure(server: tuple[str, Recorder], transport: Transport) -> None:
    base, _ = server

    outcome = await transport.perform(_request(f"{base}/huge"))

    assert isinstance(outcome, HttpFailure)
    assert outcome.kind == "connection"
    assert f"{transport_module.MAX_BODY_BYTES // (1024 * 1024)} MiB" in outcome.message
