"""Tests of the MAS emulator (tests/mas_emulator)."""

import base64

import aiohttp

from tests.mas_emulator.fixtures import mas_emulator  # noqa: F401

COLLECTION = "/api/admin/v1/user-registration-tokens"


def basic_auth(client_id: str, client_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


async def test_fixture_serves_token_and_admin_api(mas_emulator):
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            mas_emulator.token_url,
            data={"grant_type": "client_credentials", "scope": "urn:mas:admin"},
            headers={"Authorization": basic_auth(mas_emulator.client_id, mas_emulator.client_secret)},
        )
        assert response.status == 200
        access_token = (await response.json())["access_token"]

        headers = {"Authorization": f"Bearer {access_token}"}
        created = await session.post(mas_emulator.base_url + COLLECTION, json={"usage_limit": 2}, headers=headers)
        assert created.status == 201
        token_id = (await created.json())["data"]["id"]

        listed = await session.get(mas_emulator.base_url + COLLECTION, headers=headers)
        assert listed.status == 200
        assert [item["id"] for item in (await listed.json())["data"]] == [token_id]
