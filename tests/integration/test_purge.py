"""The purge and reconcile against moto server: every byte (all versions, derived, quarantine),
index item, like, counter and the record go; the tombstone stays. Idempotent, safe with two
purgers at once, and a purge killed midway is finished by the next run with nothing orphaned."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest

from infra.aws.dynamo_engagement import DynamoEngagementStore
from infra.roots import cli
from infra.roots.runtime import Runtime
from infra.settings import Settings
from services.core.audit import Auditor
from services.core.auth import Principal
from services.core.media import Media, MediaStatus, utcnow
from services.core.pagination import CursorCodec
from services.core.ports import BlobStore, EngagementStore
from services.library.retention import RetentionPolicy, RetentionService
from tests.e2e.test_listing import seed
from tests.servers import eventually

LATER = timedelta(days=31)  # past the default 30-day window
ALICE = Principal("alice")


async def stored_media(runtime: Runtime, *, tags: tuple[str, ...] = ("beach", "sea")) -> Media:
    """A COMPLETED media with two versions of its original, a derived file, a quarantine copy,
    likes and a view counter: everything the purge must remove."""
    media = await seed(runtime, "alice", tags=tags)
    s3, bucket = runtime.clients.s3, runtime.settings.bucket
    for body in (b"first", b"second"):
        await s3.put_object(Bucket=bucket, Key=media.object_key, Body=body)
    await s3.put_object(Bucket=bucket, Key=f"derived/{media.id}/thumb.jpg", Body=b"t")
    await s3.put_object(Bucket=bucket, Key=f"quarantine/{media.id}", Body=b"q")
    engagement = runtime.services.engagement
    await engagement.like(Principal("bob"), media.id)
    await engagement.like(Principal("carol"), media.id)
    return media


async def versioned(runtime: Runtime) -> None:
    # As in production (the template enables versioning): deletes leave versions behind.
    await runtime.clients.s3.put_bucket_versioning(
        Bucket=runtime.settings.bucket, VersioningConfiguration={"Status": "Enabled"}
    )


async def leftovers(runtime: Runtime, media: Media) -> dict[str, Any]:
    """Whatever of `media` is still stored, outside the audit log."""
    s3, bucket = runtime.clients.s3, runtime.settings.bucket
    objects = []
    for prefix in (media.object_key, f"derived/{media.id}/", f"quarantine/{media.id}"):
        listing = await s3.list_object_versions(Bucket=bucket, Prefix=prefix)
        objects += [v["Key"] for v in [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]]
    dynamo, table = runtime.clients.dynamodb, runtime.settings.table
    items = []
    for pk in [f"MEDIA#{media.id}", *(f"TAG#{tag}" for tag in media.tags)]:
        response = await dynamo.query(
            TableName=table,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "pk"},
            ExpressionAttributeValues={":pk": {"S": pk}},
        )
        items += [f"{item['pk']['S']}/{item['sk']['S']}" for item in response.get("Items", [])]
    counts = {s: n for s, n in (await runtime.repo.count_by_status(media.owner_id)).items() if n}
    return {"objects": objects, "items": items, "counts": counts}


async def actions(runtime: Runtime, media_id: str) -> list[str]:
    audit = runtime.services.audit
    assert audit is not None
    page = await audit.entries(ALICE, media_id, first=100, after=None)
    return [entry.action for entry in page.entries]


async def test_purge_removes_everything_and_is_idempotent(runtime: Runtime) -> None:
    await versioned(runtime)
    media = await stored_media(runtime)
    before = await leftovers(runtime, media)
    assert len(before["objects"]) == 4 and len(before["items"]) == 6  # record, 2 likes, stats, 2 tags
    deleted = await runtime.retention.delete(ALICE, media.id)

    assert await runtime.retention.purge_due() == 0  # inside the window: nothing due
    assert await runtime.retention.purge_due(now=utcnow() + LATER) == 1

    assert await leftovers(runtime, media) == {"objects": [], "items": [], "counts": {}}
    assert await runtime.repo.get(media.id) is None
    assert (await actions(runtime, media.id))[-2:] == ["DELETED", "PURGED"]
    # Again: nothing left to do, nothing changes, still one tombstone.
    assert await runtime.retention.purge_due(now=utcnow() + LATER) == 0
    assert await runtime.retention.purge(deleted, now=utcnow() + LATER) is False
    assert (await actions(runtime, media.id)).count("PURGED") == 1


async def test_purge_takes_only_what_is_due_in_due_order(runtime: Runtime) -> None:
    first = await seed(runtime, "alice")
    second = await seed(runtime, "alice")
    await runtime.retention.delete(ALICE, second.id)
    stamped = utcnow()

    async def clock_moved() -> bool:  # the next deletion gets a later time
        return utcnow() > stamped

    await eventually(clock_moved)
    await runtime.retention.delete(ALICE, first.id)
    deleted_second = await runtime.repo.get(second.id)
    assert deleted_second is not None and deleted_second.purge_after is not None
    # Just after the second one's window closes, the first one (deleted later) is not due.
    assert await runtime.retention.purge_due(now=deleted_second.purge_after + timedelta(milliseconds=5)) == 1
    assert await runtime.repo.get(second.id) is None
    assert await runtime.repo.get(first.id) is not None


async def test_two_purgers_at_once_purge_each_media_once(runtime: Runtime) -> None:
    await versioned(runtime)
    media = [await stored_media(runtime, tags=(f"t{i}",)) for i in range(4)]
    for item in media:
        await runtime.retention.delete(ALICE, item.id)
    other = _retention(runtime)
    now = utcnow() + LATER
    results = await asyncio.gather(
        runtime.retention.purge_due(now=now), other.purge_due(now=now), runtime.retention.purge_due(now=now)
    )

    assert sum(results) == 4
    for item in media:
        assert await leftovers(runtime, item) == {"objects": [], "items": [], "counts": {}}
        assert (await actions(runtime, item.id)).count("PURGED") == 1


class Crash(Exception):
    pass


class CrashingBlobs:
    """The production blob store, killed after removing the first prefix."""

    def __init__(self, inner: BlobStore) -> None:
        self._inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def delete_all_versions(self, prefix: str) -> int:
        self.calls += 1
        if self.calls > 1:
            raise Crash("killed midway")
        return await self._inner.delete_all_versions(prefix)


class CrashingEngagement:
    def __init__(self, inner: EngagementStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def forget(self, media_id: str) -> None:
        raise Crash("killed midway")


def _engagement(runtime: Runtime) -> DynamoEngagementStore:
    return DynamoEngagementStore(runtime.clients.dynamodb, runtime.settings.table)


def _retention(
    runtime: Runtime,
    *,
    blobs: Any = None,
    engagement: Any = None,
    retention: timedelta = timedelta(days=30),
) -> RetentionService:
    """A second purger (another process) over the same bucket and table."""
    audit = runtime.services.audit
    assert isinstance(audit, Auditor)
    return RetentionService(
        runtime.repo,
        blobs or runtime.blobs,
        runtime.bus,
        engagement or _engagement(runtime),
        audit,
        CursorCodec(b"another purger"),
        RetentionPolicy(retention=retention),
    )


@pytest.mark.parametrize("where", ["bytes", "likes"])
async def test_purge_killed_midway_is_finished_by_the_next_run(
    runtime: Runtime, settings: Settings, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    await versioned(runtime)
    media = await stored_media(runtime)
    await runtime.retention.delete(ALICE, media.id)
    now = utcnow() + LATER
    if where == "bytes":
        crashing = _retention(runtime, blobs=CrashingBlobs(runtime.blobs))
    else:
        crashing = _retention(runtime, engagement=CrashingEngagement(_engagement(runtime)))
    with pytest.raises(Crash):
        await crashing.purge_due(now=now)

    half = await leftovers(runtime, media)
    assert f"MEDIA#{media.id}/META" in half["items"]  # the record is there: the work is findable
    leased = await runtime.repo.get(media.id)
    assert leased is not None and leased.status is MediaStatus.DELETED and leased.purge_lease_until
    # While the crashed purger's lease runs, no one else starts on it.
    assert await runtime.retention.purge_due(now=now) == 0
    # The next run after the lease: `mediagraph purge` with the clock past it.
    assert await runtime.retention.purge_due(now=now + timedelta(minutes=6)) == 1

    assert await leftovers(runtime, media) == {"objects": [], "items": [], "counts": {}}
    assert (await actions(runtime, media.id)).count("PURGED") == 1
    assert await cli.reconcile(settings, repair=False) == 0
    assert json.loads(capsys.readouterr().out) == {
        "orphan_objects": [],
        "records_without_object": [],
        "expired_pending": [],
        "repaired": False,
    }


async def test_purge_command_purges_what_is_due(
    runtime: Runtime, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = await stored_media(runtime, tags=("kept",))
    await runtime.retention.delete(ALICE, kept.id)  # 30 days to go
    media = await stored_media(runtime)
    await _retention(runtime, retention=timedelta(0)).delete(ALICE, media.id)  # due at once

    await cli.purge(settings)
    assert json.loads(capsys.readouterr().out) == {"media_purged": 1}
    # alice's counters now hold only the one still in the trash.
    assert await leftovers(runtime, media) == {"objects": [], "items": [], "counts": {MediaStatus.DELETED: 1}}
    assert await runtime.repo.get(kept.id) is not None


async def test_reconcile_reports_and_repairs_orphans(
    runtime: Runtime, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, bucket = runtime.clients.s3, runtime.settings.bucket
    healthy = await stored_media(runtime)
    orphan_key = f"{settings.upload_prefix}01JORPHANORPHANORPHANORPHA"
    await s3.put_object(Bucket=bucket, Key=orphan_key, Body=b"nobody's")
    await s3.put_object(Bucket=bucket, Key="derived/01JGONEGONEGONEGONEGONEGON/thumb.jpg", Body=b"t")
    missing = await seed(runtime, "alice")  # COMPLETED, but its bytes were never stored
    expired = await seed(runtime, "alice", status=MediaStatus.PENDING)
    expired_record = Media.from_record(
        {**expired.to_record(), "expires_at": (utcnow() - timedelta(hours=1)).isoformat(), "version": 2}
    )
    await runtime.repo.save(expired_record, expected_version=1)

    assert await cli.reconcile(settings, repair=False) == 1
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["orphan_objects"]) == sorted(
        [orphan_key, "derived/01JGONEGONEGONEGONEGONEGON/thumb.jpg"]
    )
    assert report["records_without_object"] == [missing.id]
    assert report["expired_pending"] == [expired.id]
    assert await runtime.repo.get(missing.id) is not None  # only reported

    assert await cli.reconcile(settings, repair=True) == 0
    capsys.readouterr()
    assert await cli.reconcile(settings, repair=False) == 0
    assert json.loads(capsys.readouterr().out)["orphan_objects"] == []
    assert await runtime.repo.get(missing.id) is None
    assert await runtime.repo.get(expired.id) is None
    assert await runtime.repo.get(healthy.id) is not None
    assert (await actions(runtime, missing.id))[-1] == "PURGED"


async def test_init_resources_sets_the_lifecycle_rules(runtime: Runtime) -> None:
    # moto stores lifecycle rules without applying them: the configuration is what is checked.
    rules = (await runtime.clients.s3.get_bucket_lifecycle_configuration(Bucket=runtime.settings.bucket))[
        "Rules"
    ]
    by_id = {rule["ID"]: rule for rule in rules}
    assert by_id["uploads-to-glacier-ir"]["Transitions"] == [{"Days": 90, "StorageClass": "GLACIER_IR"}]
    assert by_id["uploads-to-glacier-ir"]["Filter"] == {"Prefix": "uploads/"}
    assert by_id["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert by_id["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}


async def test_a_deleted_upload_loses_its_ttl_and_waits_for_the_purge(runtime: Runtime) -> None:
    # Real DynamoDB TTL would drop the record behind the counters' back; the purge owns it now.
    pending = await seed(runtime, "alice", status=MediaStatus.PENDING)
    key = {"pk": {"S": f"MEDIA#{pending.id}"}, "sk": {"S": "META"}}
    table = runtime.settings.table
    assert "ttl" in (await runtime.clients.dynamodb.get_item(TableName=table, Key=key))["Item"]
    await runtime.retention.delete(ALICE, pending.id)
    assert "ttl" not in (await runtime.clients.dynamodb.get_item(TableName=table, Key=key))["Item"]
    restored = await runtime.retention.restore(ALICE, pending.id)
    assert restored.status is MediaStatus.PENDING
    assert "ttl" in (await runtime.clients.dynamodb.get_item(TableName=table, Key=key))["Item"]
