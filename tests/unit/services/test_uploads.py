"""UploadService.create_upload: what is accepted, what is refused, and that a refusal stores nothing."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from services.core.auth import Principal
from services.core.errors import BadUserInput
from services.core.events import MediaEventType
from services.core.media import Media, MediaStatus, Visibility, utcnow
from services.ingest.uploads import UploadPolicy, UploadRequest, UploadService
from tests.fakes import InMemoryBlobStore, InMemoryEventBus, InMemoryMediaRepository

MAX_BYTES = 10 * 1024 * 1024
PENDING_TTL_S = 3600
URL_TTL_S = 900
ALICE = Principal(user_id="alice")
SHA = hashlib.sha256(b"the bytes").hexdigest()


@dataclass
class Env:
    service: UploadService
    repo: InMemoryMediaRepository
    blobs: InMemoryBlobStore
    bus: InMemoryEventBus


@pytest.fixture
def env() -> Env:
    repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore()
    bus = InMemoryEventBus(repo.outbox)
    policy = UploadPolicy(
        allowed_content_types=("image/jpeg", "image/png", "video/mp4"),
        max_upload_bytes=MAX_BYTES,
        upload_url_ttl_s=URL_TTL_S,
        pending_ttl_s=PENDING_TTL_S,
    )
    return Env(UploadService(repo, blobs, bus, policy), repo, blobs, bus)


def request(**changes: Any) -> UploadRequest:
    values: dict[str, Any] = {
        "filename": "holiday.jpg",
        "content_type": "image/jpeg",
        "size": 1234,
        "sha256": SHA,
        **changes,
    }
    return UploadRequest(**values)


async def test_accepted_upload_is_pending_with_a_server_chosen_key(env: Env) -> None:
    before = utcnow()
    ticket = await env.service.create_upload(
        ALICE, request(filename="Secret Name.jpg", title="Beach", visibility=Visibility.PUBLIC)
    )
    media = ticket.media

    assert media.status is MediaStatus.PENDING
    assert media.owner_id == "alice"
    assert media.object_key == f"uploads/{media.id}"
    assert "Secret" not in media.object_key and ".jpg" not in media.object_key
    assert media.filename == "Secret Name.jpg"
    assert media.title == "Beach"
    assert media.visibility is Visibility.PUBLIC
    assert media.size == 1234 and media.sha256 == SHA
    assert media.expires_at is not None
    assert before + timedelta(seconds=PENDING_TTL_S) <= media.expires_at
    assert media.expires_at <= utcnow() + timedelta(seconds=PENDING_TTL_S)
    assert await env.repo.get(media.id) == media


async def test_accepted_upload_returns_a_presigned_put_of_the_declared_bytes(env: Env) -> None:
    ticket = await env.service.create_upload(ALICE, request())

    assert ticket.upload is not None
    assert ticket.upload.method == "PUT"
    assert ticket.upload.expires_in == URL_TTL_S
    assert ticket.media.object_key in ticket.upload.url
    assert ticket.upload.headers["Content-Type"] == "image/jpeg"
    assert ticket.upload.headers["x-amz-checksum-sha256"] == base64.b64encode(bytes.fromhex(SHA)).decode()


async def test_each_upload_gets_its_own_id_and_key(env: Env) -> None:
    first = await env.service.create_upload(ALICE, request())
    second = await env.service.create_upload(ALICE, request())

    assert first.media.id != second.media.id
    assert first.media.object_key != second.media.object_key
    assert len(env.repo) == 2


async def test_accepted_upload_announces_created_to_the_owner(env: Env) -> None:
    ticket = await env.service.create_upload(ALICE, request(), request_id="req-1")

    assert [(e.type, e.media.id) for e in env.bus.published] == [(MediaEventType.CREATED, ticket.media.id)]
    assert ticket.media.request_id == "req-1"


async def test_declared_values_are_normalised(env: Env) -> None:
    ticket = await env.service.create_upload(
        ALICE, request(content_type=" Image/JPEG ", sha256=SHA.upper(), title="  Sunset  ")
    )

    assert ticket.media.content_type == "image/jpeg"
    assert ticket.media.sha256 == SHA
    assert ticket.media.title == "Sunset"


async def test_limits_are_inclusive(env: Env) -> None:
    ticket = await env.service.create_upload(
        ALICE,
        request(
            size=MAX_BYTES,
            title="t" * 200,
            tags=tuple(f"tag{i}" for i in range(20)),
            filename="f" * 251 + ".jpg",
        ),
    )
    assert ticket.media.size == MAX_BYTES
    assert len(ticket.media.tags) == 20
    ticket = await env.service.create_upload(ALICE, request(size=1, tags=("x" * 64,)))
    assert ticket.media.tags == ("x" * 64,)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"size": MAX_BYTES + 1}, "size", id="oversized"),
        pytest.param({"size": 0}, "size", id="zero-size"),
        pytest.param({"size": -1}, "size", id="negative-size"),
        pytest.param({"content_type": "application/pdf"}, "contentType", id="pdf"),
        pytest.param({"content_type": "text/html"}, "contentType", id="html"),
        pytest.param({"content_type": "image/jpeg; charset=x"}, "contentType", id="type-with-params"),
        pytest.param({"content_type": ""}, "contentType", id="empty-type"),
        pytest.param({"sha256": "abc"}, "sha256", id="sha-short"),
        pytest.param({"sha256": SHA[:-1]}, "sha256", id="sha-63"),
        pytest.param({"sha256": SHA + "0"}, "sha256", id="sha-65"),
        pytest.param({"sha256": "g" * 64}, "sha256", id="sha-not-hex"),
        pytest.param({"sha256": base64.b64encode(bytes.fromhex(SHA)).decode()}, "sha256", id="sha-base64"),
        pytest.param({"sha256": ""}, "sha256", id="sha-empty"),
        pytest.param({"tags": tuple(f"t{i}" for i in range(21))}, "tags", id="too-many-tags"),
        pytest.param({"tags": ("x" * 65,)}, "tags", id="tag-too-long"),
        pytest.param({"tags": ("two words",)}, "tags", id="tag-space"),
        pytest.param({"tags": ("semi;colon",)}, "tags", id="tag-punctuation"),
        pytest.param({"tags": ("a-b",)}, "tags", id="tag-dash"),
        pytest.param({"tags": ("<script>",)}, "tags", id="tag-markup"),
        pytest.param({"tags": ("",)}, "tags", id="tag-empty"),
        pytest.param({"tags": ("#",)}, "tags", id="tag-only-hash"),
        pytest.param({"tags": ("zero\u200bwidth",)}, "tags", id="tag-zero-width"),
        pytest.param({"filename": "a/b.jpg"}, "filename", id="slash"),
        pytest.param({"filename": "../../etc/passwd"}, "filename", id="traversal"),
        pytest.param({"filename": "a\\b.jpg"}, "filename", id="backslash"),
        pytest.param({"filename": "nul\x00.jpg"}, "filename", id="nul"),
        pytest.param({"filename": "line\nbreak.jpg"}, "filename", id="newline"),
        pytest.param({"filename": "bell\x07.jpg"}, "filename", id="bell"),
        pytest.param({"filename": "gpj.\u202eexe"}, "filename", id="rtl-override"),
        pytest.param({"filename": ""}, "filename", id="empty-filename"),
        pytest.param({"filename": "   "}, "filename", id="blank-filename"),
        pytest.param({"filename": "f" * 256}, "filename", id="long-filename"),
        pytest.param({"title": "t" * 201}, "title", id="long-title"),
        pytest.param({"title": "tab\x1bescape"}, "title", id="title-control"),
    ],
)
async def test_refused_upload_stores_and_publishes_nothing(
    env: Env, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadUserInput) as refused:
        await env.service.create_upload(ALICE, request(**changes))

    assert refused.value.code == "BAD_USER_INPUT"
    assert refused.value.extensions["field"] == field
    assert len(env.repo) == 0
    assert env.bus.published == []


async def test_refusal_of_a_long_value_does_not_echo_it_whole(env: Env) -> None:
    with pytest.raises(BadUserInput) as refused:
        await env.service.create_upload(ALICE, request(content_type="x" * 10_000))
    assert len(refused.value.message) < 500


async def test_tags_are_normalised_and_deduplicated(env: Env) -> None:
    ticket = await env.service.create_upload(
        ALICE,
        request(tags=("#Sunset", "SUNSET", "  beach ", "##Beach", "Cafe\u0301", "caf\u00e9", "Ünïcode")),
    )

    assert ticket.media.tags == ("sunset", "beach", "caf\u00e9", "ünïcode")
    stored = await env.repo.get(ticket.media.id)
    assert stored is not None and stored.tags == ticket.media.tags
    assert env.bus.published[0].media.tags == ticket.media.tags


async def test_titles_and_filenames_are_stored_in_nfc(env: Env) -> None:
    ticket = await env.service.create_upload(
        ALICE, request(filename="Cafe\u0301.jpg", title="Cafe\u0301 au lait")
    )
    assert ticket.media.filename == "Caf\u00e9.jpg"
    assert ticket.media.title == "Caf\u00e9 au lait"


async def test_no_title_is_an_empty_title(env: Env) -> None:
    ticket = await env.service.create_upload(ALICE, request(title=None))
    assert ticket.media.title == ""
    assert ticket.media.visibility is Visibility.PRIVATE


async def _completed(env: Env, owner: str = "alice", **changes: Any) -> Media:
    import dataclasses

    from services.core.media import Variant
    from tests.fakes import make_media

    media = make_media(b"x" * 1234, owner_id=owner, status=MediaStatus.COMPLETED)
    media = dataclasses.replace(
        media,
        sha256=SHA,
        width=40,
        height=30,
        blurhash="LEHV6nWB2yk8",
        phash="00ff00ff00ff00ff",
        variants=(Variant("display", f"derived/{media.id}/display.webp", 40, 30),),
        **changes,
    )
    await env.repo.create(media)
    env.blobs.put(media.object_key, b"x" * 1234, "image/jpeg")
    env.blobs.put(f"derived/{media.id}/display.webp", b"webp", "image/webp")
    return media


async def test_bytes_the_owner_already_has_complete_at_once_without_an_upload(env: Env) -> None:
    same = await _completed(env)

    ticket = await env.service.create_upload(
        ALICE, request(title="Again", tags=("new",), visibility=Visibility.PUBLIC)
    )

    assert ticket.upload is None
    media = ticket.media
    assert media.id != same.id and media.status is MediaStatus.COMPLETED
    assert (media.title, media.tags, media.visibility) == ("Again", ("new",), Visibility.PUBLIC)
    assert (media.width, media.height, media.blurhash, media.duplicate_of) == (
        40,
        30,
        "LEHV6nWB2yk8",
        same.id,
    )
    assert media.expires_at is None and media.completed_at is not None
    assert env.blobs.get(media.object_key) == b"x" * 1234
    display = media.variant("display")
    assert display is not None and display.key == f"derived/{media.id}/display.webp"
    assert env.blobs.get(display.key) == b"webp"
    assert await env.repo.get(media.id) == media
    assert [event.type for event in env.bus.published] == [MediaEventType.COMPLETED]
    assert env.blobs.presigned == []


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param({"owner": "bob"}, id="another-owners-bytes"),
        pytest.param({"status": MediaStatus.QUARANTINED}, id="quarantined"),
        pytest.param({"content_type": "image/png"}, id="declared-as-another-type"),
    ],
)
async def test_no_instant_upload_for_bytes_that_are_not_the_owners_verified_ones(
    env: Env, setup: dict[str, Any]
) -> None:
    await _completed(env, **setup)

    ticket = await env.service.create_upload(ALICE, request())

    assert ticket.upload is not None and ticket.media.status is MediaStatus.PENDING


async def test_an_original_deleted_meanwhile_means_an_ordinary_upload(env: Env) -> None:
    same = await _completed(env)
    await env.blobs.delete(same.object_key)

    ticket = await env.service.create_upload(ALICE, request())

    assert ticket.upload is not None and ticket.media.status is MediaStatus.PENDING
