"""The baseline of the core-path latency benchmark: the least code that carries an S3 event to a
WebSocket client: SQS long poll → Redis PUBLISH → one Redis subscription → websockets send."""

from __future__ import annotations

import argparse
import asyncio
import os

import aioboto3
from redis.asyncio import Redis
from websockets.asyncio.server import ServerConnection, serve


async def main(port: int, queue_url: str, redis_url: str, channel: str) -> None:
    redis = Redis.from_url(redis_url)
    clients: set[ServerConnection] = set()

    async def relay_sqs() -> None:
        session = aioboto3.Session(region_name="us-east-1")
        async with session.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"]) as sqs:
            while True:
                response = await sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )
                for message in response.get("Messages", []):
                    await redis.publish(channel, message["Body"])
                    await sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    async def relay_redis() -> None:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel)
        async for message in pubsub.listen():
            for client in list(clients):
                await client.send(message["data"])

    async def handler(websocket: ServerConnection) -> None:
        clients.add(websocket)
        try:
            await websocket.wait_closed()
        finally:
            clients.discard(websocket)

    async with serve(handler, "127.0.0.1", port):
        await asyncio.gather(relay_sqs(), relay_redis())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--channel", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.queue_url, args.redis_url, args.channel))
