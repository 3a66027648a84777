"""Pytest fixtures for the MAS emulator.

Import the fixture into a test module or a conftest.py:

    from tests.mas_emulator.fixtures import mas_emulator  # noqa: F401
"""

import secrets

import pytest_asyncio

from .app import MasEmulator, new_client_id


@pytest_asyncio.fixture
async def mas_emulator():
    """A running MasEmulator on 127.0.0.1 with one admin client, stopped after the test.

    The client id is a fresh ULID-shaped string ending in "AD" and the secret is
    random; read them from `mas_emulator.client_id` and `.client_secret`.
    """
    emulator = MasEmulator(client_id=new_client_id(), client_secret=secrets.token_urlsafe(24))
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()
