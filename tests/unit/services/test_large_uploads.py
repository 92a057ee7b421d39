"""Multipart uploads, idempotency keys and quotas in UploadService/MultipartService, on in-memory
fakes: what each checks, and that a refusal leaves nothing behind."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import timedelta

import pytest

from services.core.auth import Principal
from services.core.errors import BadUserInput, Conflict, NotFound
from services.core.media import MediaStatus, utcnow
from services.ingest.multipart import CompletedPart, MultipartService, PartRequest, part_count, part_size_for
from services.ingest.processing import ProcessingService
from services.ingest.quotas import QuotaPolicy, QuotaService
from services.ingest.uploads import UploadPolicy, UploadRequest, UploadService
from tests.fakes import (
    InMemoryBlobStore,
    InMemoryEventBus,
    InMemoryIdempotencyStore,
    InMemoryMediaRepository,
    make_media,
)

MIB = 1024 * 1024
PART = 5 * MIB
ALICE = Principal(user_id="alice")
BOB = Principal(user_id="bob")


@dataclass
class Env:
    uploads: UploadService
    multipart: MultipartService
    repo: InMemoryMediaRepository
    blobs: InMemoryBlobStore
    idempotency: InMemoryIdempotencyStore


@pytest.fixture
def env() -> Env:
    repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore()
    bus = InMemoryEventBus(repo.outbox)
    idempotency = InMemoryIdempotencyStore()
    policy = UploadPolicy(
        allowed_content_types=("video/mp4", "image/jpeg"),
        max_upload_bytes=100 * MIB,
        upload_url_ttl_s=900,
        pending_ttl_s=3600,
        multipart_threshold_bytes=PART,
        part_size_bytes=PART,
    )
    quotas = QuotaService(QuotaPolicy(max_bytes_per_user=40 * MIB, max_pending_per_user=3))
    service = UploadService(repo, blobs, bus, policy, quotas=quotas, idempotency=idempotency)
    return Env(service, service.multipart, repo, blobs, idempotency)


def declared(data: bytes, key: str | None = None) -> UploadRequest:
    return UploadRequest(
        filename="v.mp4",
        content_type="video/mp4",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        idempotency_key=key,
    )


def part(data: bytes, number: int) -> bytes:
    return data[(number - 1) * PART : number * PART]


async def start(env: Env, data: bytes) -> tuple[str, str]:
    ticket = await env.uploads.create_upload(ALICE, declared(data))
    assert ticket.media.multipart_upload_id is not None
    return ticket.media.id, ticket.media.multipart_upload_id


def test_part_size_grows_only_past_ten_thousand_parts() -> None:
    assert part_size_for(5 * 1024**3, 16 * MIB) == 16 * MIB
    big = part_size_for(200 * 1024**3, 16 * MIB)
    assert big % MIB == 0 and part_count(200 * 1024**3, big) <= 10_000
    assert part_count(2 * PART + 1, PART) == 3 and part_count(2 * PART, PART) == 2


async def test_small_files_get_one_put_and_large_ones_a_plan(env: Env) -> None:
    small = await env.uploads.create_upload(ALICE, declared(b"x" * PART))
    assert small.upload is not None and small.multipart is None
    large = await env.uploads.create_upload(ALICE, declared(b"x" * (PART + 1)))
    assert large.upload is None and large.multipart is not None
    assert (large.multipart.part_size, large.multipart.part_count) == (PART, 2)
    assert [p.part_number for p in large.multipart.parts] == [1, 2]
    assert large.media.multipart_upload_id in env.blobs.multipart


async def test_part_urls_sign_the_checksum_and_refuse_bad_numbers(env: Env) -> None:
    data = b"v" * (PART + 10)
    media_id, _ = await start(env, data)
    sha = hashlib.sha256(part(data, 2)).hexdigest()
    (minted,) = await env.multipart.part_urls(ALICE, media_id, [PartRequest(2, sha)])
    assert minted.part_number == 2 and "x-amz-checksum-sha256" in minted.request.headers
    with pytest.raises(BadUserInput):
        await env.multipart.part_urls(ALICE, media_id, [PartRequest(3)])
    with pytest.raises(BadUserInput):
        await env.multipart.part_urls(ALICE, media_id, [PartRequest(1, "not-a-hash")])
    with pytest.raises(NotFound):
        await env.multipart.part_urls(BOB, media_id, [PartRequest(1)])


async def test_completion_checks_sizes_etags_checksums_and_total(env: Env) -> None:
    data = bytes(range(256)) * ((2 * PART + 100) // 256)
    media_id, upload_id = await start(env, data)
    count = part_count(len(data), PART)
    etags = {n: env.blobs.put_part(upload_id, n, part(data, n)) for n in range(1, count + 1)}
    good = [CompletedPart(n, etags[n], hashlib.sha256(part(data, n)).hexdigest()) for n in etags]

    bad_sha = [*good[:-1], CompletedPart(count, etags[count], "0" * 64)]
    with pytest.raises(BadUserInput, match="checksum"):
        await env.multipart.complete(ALICE, media_id, bad_sha)
    with pytest.raises(BadUserInput, match="exactly once"):
        await env.multipart.complete(ALICE, media_id, good[:-1])
    env.blobs.put_part(upload_id, 1, part(data, 1)[:-1])  # a short part 1 replaces the good one
    with pytest.raises(BadUserInput, match="ETag"):
        await env.multipart.complete(ALICE, media_id, good)
    short = [CompletedPart(1, env.blobs.put_part(upload_id, 1, part(data, 1)[:-1])), *good[1:]]
    with pytest.raises(BadUserInput, match="part 1"):
        await env.multipart.complete(ALICE, media_id, short)
    assert env.blobs.stored_keys() == set()  # nothing was assembled

    env.blobs.put_part(upload_id, 1, part(data, 1))
    media = await env.multipart.complete(ALICE, media_id, good)
    assert media.status is MediaStatus.PENDING
    assert (await env.blobs.head(media.object_key)) is not None
    assert (await env.blobs.open(media.object_key)) is not None


async def test_progress_lists_what_s3_has(env: Env) -> None:
    data = b"p" * (2 * PART + 1)
    media_id, upload_id = await start(env, data)
    env.blobs.put_part(upload_id, 2, part(data, 2))
    progress = await env.multipart.progress(ALICE, media_id)
    assert [p.part_number for p in progress.uploaded] == [2]
    assert progress.missing == [1, 3]


async def test_abort_removes_the_upload_and_the_record(env: Env) -> None:
    media_id, upload_id = await start(env, b"a" * (PART + 1))
    await env.multipart.abort(ALICE, media_id)
    assert upload_id not in env.blobs.multipart
    assert await env.repo.get(media_id) is None
    with pytest.raises(NotFound):
        await env.multipart.abort(ALICE, media_id)


async def test_sweeper_aborts_expired_multipart_uploads(env: Env) -> None:
    media_id, upload_id = await start(env, b"s" * (PART + 1))
    media = await env.repo.get(media_id)
    assert media is not None
    expired = dataclasses.replace(
        media, expires_at=utcnow() - timedelta(seconds=1), version=media.version + 1
    )
    await env.repo.save(expired, expected_version=media.version)
    sweeper = ProcessingService(env.repo, env.blobs, InMemoryEventBus(), upload_prefix="uploads/", steps=())
    assert await sweeper.sweep_expired() == 1
    assert upload_id not in env.blobs.multipart
    assert await env.repo.get(media_id) is None


async def test_idempotency_key_returns_the_same_media(env: Env) -> None:
    first = await env.uploads.create_upload(ALICE, declared(b"i" * 100, key="key-00000001"))
    again = await env.uploads.create_upload(ALICE, declared(b"i" * 100, key="key-00000001"))
    assert again.media.id == first.media.id and again.replayed and not first.replayed
    assert again.upload is not None  # freshly presigned
    assert len(env.repo) == 1
    with pytest.raises(BadUserInput, match="different upload"):
        await env.uploads.create_upload(ALICE, declared(b"j" * 100, key="key-00000001"))
    with pytest.raises(BadUserInput, match="idempotencyKey"):
        await env.uploads.create_upload(ALICE, declared(b"i" * 100, key="short"))


async def test_idempotency_key_of_a_refused_request_stays_free(env: Env) -> None:
    for _ in range(3):
        await env.uploads.create_upload(ALICE, declared(b"q" * 10))
    with pytest.raises(BadUserInput, match="quota"):
        await env.uploads.create_upload(ALICE, declared(b"k" * 10, key="key-00000002"))
    assert env.idempotency.claims == {}
    pending = await env.repo.list_by_owner("alice", limit=1, after=None)
    await env.multipart.abort(ALICE, pending.items[0].id)
    ticket = await env.uploads.create_upload(ALICE, declared(b"k" * 10, key="key-00000002"))
    assert not ticket.replayed


async def test_idempotency_key_of_an_aborted_upload_is_a_conflict(env: Env) -> None:
    ticket = await env.uploads.create_upload(ALICE, declared(b"c" * 10, key="key-00000003"))
    await env.multipart.abort(ALICE, ticket.media.id)
    with pytest.raises(Conflict):
        await env.uploads.create_upload(ALICE, declared(b"c" * 10, key="key-00000003"))


async def test_byte_quota_counts_held_media_until_an_expired_upload_is_swept(env: Env) -> None:
    await env.repo.create(make_media(b"z" * (30 * MIB), owner_id="alice", status=MediaStatus.COMPLETED))
    await env.repo.create(make_media(b"r" * (9 * MIB), owner_id="alice", status=MediaStatus.REJECTED))
    stale = make_media(b"y" * (9 * MIB), owner_id="alice", expires_at=utcnow() - timedelta(seconds=1))
    await env.repo.create(stale)
    # The expired upload's reservation holds until the sweeper removes it (every minute).
    with pytest.raises(BadUserInput, match="quota exceeded"):
        await env.uploads.create_upload(ALICE, declared(b"w" * (10 * MIB)))
    await env.repo.delete(stale)  # as sweep_expired does
    await env.uploads.create_upload(ALICE, declared(b"w" * (10 * MIB)))  # 30 + 10 = the 40 MiB limit
    with pytest.raises(BadUserInput, match="quota exceeded"):
        await env.uploads.create_upload(ALICE, declared(b"w"))
    await env.uploads.create_upload(BOB, declared(b"w" * (40 * MIB)))  # quotas are per user
