"""The baseline of the pipeline benchmark: the least work that turns an uploaded photo into its
variants and a COMPLETED event, one step after another on one thread. Receive the S3 event (SQS
long poll), GET the object, SHA-256, decode at the smallest scale serving the largest variant
(libvips shrink-on-load), the same variants with the same encoder settings (Pillow's libwebp,
the faster one), PUT them, one conditional write that marks COMPLETED, publish to Redis, delete
the message. No record is read first, no PROCESSING state, no checks, no duplicates search.

It listens on --port once ready (the bench waits for that) and prints nothing."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import socket
from urllib.parse import unquote_plus

import boto3
import pyvips
from PIL import Image
from redis import Redis

from infra.media.images import RENDITIONS, WEBP_METHOD, WEBP_QUALITY

pyvips.cache_set_max(0)


def _webp(image: pyvips.Image) -> bytes:
    mode = "RGBA" if image.bands == 4 else "RGB"
    pixels = Image.frombytes(mode, (image.width, image.height), image.write_to_memory())
    out = io.BytesIO()
    pixels.save(out, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return out.getvalue()


def main(port: int, queue_url: str, bucket: str, table: str, redis_url: str, channel: str) -> None:
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    redis = Redis.from_url(redis_url)
    ready = socket.create_server(("127.0.0.1", port))  # the bench's signal that we are up
    try:
        while True:
            response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in response.get("Messages", []):
                for record in json.loads(message["Body"]).get("Records", []):
                    key = unquote_plus(record["s3"]["object"]["key"])
                    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                    digest = hashlib.sha256(data).hexdigest()
                    display = pyvips.Image.thumbnail_buffer(data, RENDITIONS[0][1], size="down")
                    if display.interpretation != "srgb" or display.format != "uchar":
                        display = display.colourspace("srgb").cast("uchar")
                    display = display.copy_memory()
                    for name, edge in RENDITIONS:
                        image = display if name == "display" else display.thumbnail_image(edge, size="down")
                        s3.put_object(
                            Bucket=bucket, Key=f"derived/{key}/{name}.webp", Body=_webp(image),
                            ContentType="image/webp",
                        )  # fmt: skip
                    dynamodb.update_item(
                        TableName=table,
                        Key={"pk": {"S": key}, "sk": {"S": "BARE"}},
                        UpdateExpression="SET #s = :done, sha256 = :sha",
                        ConditionExpression="#s = :pending",
                        ExpressionAttributeNames={"#s": "status"},
                        ExpressionAttributeValues={
                            ":done": {"S": "COMPLETED"}, ":pending": {"S": "PENDING"}, ":sha": {"S": digest},
                        },
                    )  # fmt: skip
                    redis.publish(channel, json.dumps({"type": "COMPLETED", "key": key}))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    finally:
        ready.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("--queue-url", "--bucket", "--table", "--redis-url", "--channel"):
        parser.add_argument(name, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    main(args.port, args.queue_url, args.bucket, args.table, args.redis_url, args.channel)
