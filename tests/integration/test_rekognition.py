"""The Rekognition moderation adapter against a local endpoint that answers with recorded
DetectModerationLabels replies (moto has no DetectModerationLabels)."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from infra.media.pipeline import open_moderator
from infra.settings import Settings
from services.core.media import MediaStatus
from services.ingest.inspection import MediaRefused, Moderator
from services.ingest.processing import ObjectCreated, ProcessingService
from tests.conftest import TEST_SECRET
from tests.fakes import InMemoryBlobStore, InMemoryEventBus, InMemoryMediaRepository, make_media
from tests.media_files import photo
from tests.pipeline import real_steps

pytestmark = pytest.mark.integration

# Recorded from the Rekognition API reference (DetectModerationLabels, response syntax/example).
FLAGGED = {
    "ModerationLabels": [
        {"Confidence": 99.24, "Name": "Explicit Nudity", "ParentName": "", "TaxonomyLevel": 1},
        {
            "Confidence": 99.24,
            "Name": "Graphic Male Nudity",
            "ParentName": "Explicit Nudity",
            "TaxonomyLevel": 2,
        },
        {"Confidence": 62.5, "Name": "Suggestive", "ParentName": "", "TaxonomyLevel": 1},
    ],
    "ModerationModelVersion": "7.0",
}
CLEAN = {"ModerationLabels": [], "ModerationModelVersion": "7.0"}
THROTTLED = (400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
BAD_FORMAT = (400, {"__type": "InvalidImageFormatException", "message": "Request has invalid image format"})


class Recorded:
    def __init__(self) -> None:
        self.replies: list[tuple[int, dict[str, Any]]] = []
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Recorded]]:
    recorded = Recorded()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            recorded.requests.append((dict(self.headers), body))
            status, reply = recorded.replies[0] if len(recorded.replies) == 1 else recorded.replies.pop(0)
            payload = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", recorded
    server.shutdown()
    server.server_close()


@pytest.fixture
async def moderator(
    endpoint: tuple[str, Recorded], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Moderator]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings(
        _env_file=None,
        jwt_secret=TEST_SECRET,
        moderation_backend="rekognition",
        rekognition_endpoint_url=endpoint[0],
    )
    async with AsyncExitStack() as stack:
        yield await open_moderator(settings, stack)


def spooled(tmp_path: Any, data: bytes) -> str:
    path = tmp_path / "upload"
    path.write_bytes(data)
    return str(path)


async def test_labels_over_the_threshold_flag_the_image(
    moderator: Moderator, endpoint: tuple[str, Recorded], tmp_path: Any
) -> None:
    endpoint[1].replies.append((200, FLAGGED))
    data = photo(3000, 2000)
    media = make_media(data)

    result = await moderator.moderate(media, spooled(tmp_path, data))

    assert result.labels == ("Explicit Nudity", "Graphic Male Nudity")
    ((headers, body),) = endpoint[1].requests
    assert headers["X-Amz-Target"] == "RekognitionService.DetectModerationLabels"
    assert body["MinConfidence"] == 80.0
    sent = Image.open(io.BytesIO(base64.b64decode(body["Image"]["Bytes"])))
    assert sent.format == "JPEG" and max(sent.size) <= 1280  # a preview under the 5 MB limit


async def test_a_clean_reply_passes(
    moderator: Moderator, endpoint: tuple[str, Recorded], tmp_path: Any
) -> None:
    endpoint[1].replies.append((200, CLEAN))
    data = photo()

    assert not (await moderator.moderate(make_media(data), spooled(tmp_path, data))).flagged


async def test_throttling_is_retried_then_left_to_the_queue(
    moderator: Moderator, endpoint: tuple[str, Recorded], tmp_path: Any
) -> None:
    endpoint[1].replies.append(THROTTLED)
    data = photo()

    with pytest.raises(ClientError):
        await moderator.moderate(make_media(data), spooled(tmp_path, data))
    assert len(endpoint[1].requests) == 3  # botocore's retries with backoff, then a transient error


async def test_a_throttled_call_that_then_succeeds_is_answered(
    moderator: Moderator, endpoint: tuple[str, Recorded], tmp_path: Any
) -> None:
    endpoint[1].replies.extend([THROTTLED, (200, FLAGGED)])
    data = photo()

    assert (await moderator.moderate(make_media(data), spooled(tmp_path, data))).flagged
    assert len(endpoint[1].requests) == 2


async def test_an_image_rekognition_cannot_read_is_refused(
    moderator: Moderator, endpoint: tuple[str, Recorded], tmp_path: Any
) -> None:
    endpoint[1].replies.append(BAD_FORMAT)
    data = photo()

    with pytest.raises(MediaRefused):
        await moderator.moderate(make_media(data), spooled(tmp_path, data))


async def test_flagged_by_rekognition_is_quarantined_by_the_pipeline(
    moderator: Moderator, endpoint: tuple[str, Recorded]
) -> None:
    endpoint[1].replies.append((200, FLAGGED))
    repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore()
    bus = InMemoryEventBus(repo.outbox)
    service = ProcessingService(
        repo, blobs, bus, upload_prefix="uploads/", steps=real_steps(repo, blobs, moderator=moderator)
    )
    data = photo()
    media = make_media(data)
    await repo.create(media)
    blobs.put(media.object_key, data, "image/jpeg")

    await service.handle(ObjectCreated(key=media.object_key))

    done = await repo.get(media.id)
    assert done is not None and done.status is MediaStatus.QUARANTINED
    assert done.quarantine_kind == "moderation"
    assert done.reject_reason == "held for review: Explicit Nudity, Graphic Male Nudity"
