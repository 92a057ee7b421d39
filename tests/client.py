"""Test clients speaking the real protocols: GraphQL over HTTP (httpx) and graphql-transport-ws
(websockets)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from types import TracebackType
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

CREATE_UPLOAD = """
mutation($input: CreateUploadInput!) {
  createUpload(input: $input) {
    media { id mediaId status size sha256 owner { id } }
    upload { url method expiresAt headers { name value } }
  }
}"""


async def gql(
    base: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
    body: dict[str, Any] = response.json()
    body["_status"] = response.status_code
    return body


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors") or []]


def upload_input(data: bytes, **fields: Any) -> dict[str, Any]:
    """createUpload's input declaring exactly `data` (as a JPEG unless `fields` say otherwise)."""
    return {
        "filename": "photo.jpg",
        "contentType": "image/jpeg",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **fields,
    }


async def create_upload(base: str, token: str, data: bytes, **fields: Any) -> dict[str, Any]:
    variables = {"input": upload_input(data, **{"title": "A photo", "tags": ["#Sunset"], **fields})}
    body = await gql(base, CREATE_UPLOAD, variables, token=token)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["createUpload"]
    return payload


async def put_upload(upload: dict[str, Any], data: bytes) -> int:
    headers = {header["name"]: header["value"] for header in upload["headers"]}
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.request(upload["method"], upload["url"], content=data, headers=headers)
    return response.status_code


class WsClient:
    """A graphql-transport-ws client: init, subscribe, read messages."""

    def __init__(self, base: str, token: str | None, *, init: bool = True) -> None:
        self.url = base.replace("http://", "ws://") + "/graphql"
        self.token = token
        self.init = init
        self.ws: ClientConnection | None = None
        self._next_id = 0

    async def __aenter__(self) -> WsClient:
        self.ws = await connect(self.url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        if self.init:
            payload = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            await self.send({"type": "connection_init", "payload": payload})
            ack = await self.receive()
            assert ack["type"] == "connection_ack", ack
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self.ws is not None
        await self.ws.close()

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    async def receive(self, timeout: float = 15) -> dict[str, Any]:
        assert self.ws is not None
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return message

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._next_id += 1
        op_id = str(self._next_id)
        await self.send(
            {"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}}
        )
        return op_id

    async def expect_nothing(self, seconds: float) -> None:
        """Fail if any message arrives within `seconds`."""
        try:
            message = await self.receive(timeout=seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message: {message}")
