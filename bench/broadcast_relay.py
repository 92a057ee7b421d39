"""The baseline of the realtime benchmark: the least code that carries a Redis message to many
WebSocket clients: one Redis subscription, `websockets.broadcast` of the bytes as received."""

from __future__ import annotations

import argparse
import asyncio

import uvloop
import websockets
from redis.asyncio import Redis
from websockets.asyncio.server import ServerConnection, serve


async def main(port: int, redis_url: str, channel: str) -> None:
    redis = Redis.from_url(redis_url)
    clients: set[ServerConnection] = set()

    async def relay() -> None:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel)
        async for message in pubsub.listen():
            websockets.broadcast(clients, message["data"].decode())

    async def handler(websocket: ServerConnection) -> None:
        clients.add(websocket)
        try:
            await websocket.wait_closed()
        finally:
            clients.discard(websocket)

    async with serve(handler, "127.0.0.1", port, compression=None):
        await relay()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--channel", required=True)
    args = parser.parse_args()
    uvloop.install()  # the same event loop as uvicorn's, so the ratio compares code, not loops
    asyncio.run(main(args.port, args.redis_url, args.channel))
