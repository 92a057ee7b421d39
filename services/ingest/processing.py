"""The worker's side of an upload: an S3 ObjectCreated notice → PROCESSING → the pipeline
(`services/ingest/pipeline.py`) → COMPLETED, REJECTED or QUARANTINED.

S3 delivers at least once and moto even sends two notices for one multipart upload, so
every step here is idempotent. Each status change writes its event into the outbox in the same
transaction (infra/aws/outbox.py); a notice first publishes whatever of its media is still
there. Timeline of a redelivery after a crash:

    t0  notice #1: PENDING v1 → PROCESSING v2 (+ its event), publish PROCESSING
    t1  derivatives written under derived/<id>/ ... worker killed
    t2  notice #1 again: pending events of the media published (none: PROCESSING went out);
        PROCESSING v2 found, the pipeline runs again and writes the same derived keys,
        PROCESSING v2 → COMPLETED v3 (+ its event), publish COMPLETED
    t3  notice #2: pending events published (none); record already COMPLETED → nothing

A worker killed between the final write and the publish leaves COMPLETED in the outbox: the
relay of any process publishes it within seconds, or the redelivery at once, whichever is first.
Nothing is published again that already went out, even if Redis lost its dedupe markers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import BinaryIO

from ulid import ULID

from services.core.audit import Auditor
from services.core.errors import Conflict
from services.core.events import MediaEvent, MediaEventType
from services.core.media import TERMINAL, Media, MediaStatus, utcnow
from services.core.ports import BlobStore, BlobStream, EventBus, MediaRepository, NoTelemetry, Telemetry
from services.ingest.inspection import MediaRefused
from services.ingest.notifications import Notifier
from services.ingest.pipeline import Job, Prefetching, Step, Verdict
from services.ingest.uploads import media_id_from_key, object_key_for
from services.ingest.verification import DEFAULT_CHECKS, Check

log = logging.getLogger("mediagraph.worker")


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    key: str
    size: int | None = None
    event_time: datetime | None = None
    sequencer: str | None = None  # absent from moto's events; present on real S3


class RecordNotHereYet(Exception):
    """Retryable: this region's table has not received the record the event is about yet
    (multi-region: the row replicates separately from the bytes). SQS redelivers the event."""


class Outcome(StrEnum):
    COMPLETED = "completed"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"
    DUPLICATE = "duplicate"  # already processed: nothing changed
    IGNORED = "ignored"  # not ours, unknown, or gone


_EVENT_FOR = {
    MediaStatus.PROCESSING: MediaEventType.PROCESSING,
    MediaStatus.COMPLETED: MediaEventType.COMPLETED,
    MediaStatus.REJECTED: MediaEventType.REJECTED,
    MediaStatus.QUARANTINED: MediaEventType.QUARANTINED,
}
_OUTCOME_FOR = {
    MediaStatus.COMPLETED: Outcome.COMPLETED,
    MediaStatus.REJECTED: Outcome.REJECTED,
    MediaStatus.QUARANTINED: Outcome.QUARANTINED,
}


class ProcessingService:
    def __init__(
        self,
        repo: MediaRepository,
        blobs: BlobStore,
        bus: EventBus,
        *,
        upload_prefix: str,
        steps: Sequence[Step],
        quarantine_prefix: str = "quarantine/",
        checks: Sequence[Callable[[Media], Check]] = DEFAULT_CHECKS,
        workdir: str | None = None,
        notifiers: Sequence[Notifier] = (),
        telemetry: Telemetry | None = None,
        auditor: Auditor | None = None,
        announce_only: bool = False,
        await_records_for: timedelta = timedelta(0),
    ) -> None:
        # Multi-region (docs/multi-region.md). `announce_only`: a replica region's worker, whose
        # events are CRR replicas of objects the home region processes; it never runs the
        # pipeline or writes, it re-announces the replicated outcome on this region's bus.
        # `await_records_for`: an event for an upload younger than this whose record is not in
        # this region's table yet (created through another region) is retried, not ignored.
        self._announce_only = announce_only
        self._await_records_for = await_records_for
        self._auditor = auditor
        self._repo = repo
        self._blobs = blobs
        self._bus = bus
        self._prefix = upload_prefix
        self._quarantine_prefix = quarantine_prefix
        self._steps = steps
        self._checks = checks
        self._workdir = workdir
        self._notifiers = notifiers
        self._telemetry = telemetry or NoTelemetry()

    async def handle(self, notice: ObjectCreated) -> Outcome:
        """Process one notice. Raises on transient failures so the message is retried."""
        media_id = media_id_from_key(self._prefix, notice.key)
        if media_id is None:
            return Outcome.IGNORED
        if self._announce_only:
            with self._telemetry.step("load"):
                media = await self._repo.get(media_id)
            return await self._announce_replica(media_id, media)
        # The object is asked for at once, beside the reads below: its key is the notice's, and
        # its bytes are what the steps wait for. A notice that ends early closes it unread.
        early = _EarlyOpen(self._blobs, notice.key)
        try:
            return await self._handle(media_id, notice, early)
        finally:
            await early.discard()

    async def _handle(self, media_id: str, notice: ObjectCreated, early: _EarlyOpen) -> Outcome:
        # The record and the outbox are read at once: neither depends on the other. Events of
        # earlier writes that did not go out (Redis was down, a worker died) are published now,
        # before anything this notice announces.
        delivering = asyncio.create_task(self._deliver_pending(media_id))
        try:
            media = await self._load(media_id)
        except BaseException:
            delivering.cancel()
            await asyncio.wait({delivering})
            raise
        await delivering
        if media is None:
            if self._may_still_arrive(media_id):
                raise RecordNotHereYet(f"no record for {media_id} in this region yet")
            return Outcome.IGNORED
        # The request that created the upload: S3 events carry none, the record does.
        self._telemetry.annotate(media_id=media_id, request_id=media.request_id)
        if is_older(notice.sequencer, media.sequencer):
            return Outcome.IGNORED  # an event that was overtaken by a newer one for this key
        if media.status in TERMINAL:
            if media.status is MediaStatus.COMPLETED and is_older(media.sequencer, notice.sequencer):
                return await self._recheck(media, notice)
            with self._telemetry.step("announce"):
                await self._settle(media, None)
            return Outcome.DUPLICATE
        if media.status is MediaStatus.DELETED or media.object_key != notice.key:
            return Outcome.IGNORED

        # The download depends on nothing the PROCESSING write changes: it runs beside it.
        spooled = asyncio.create_task(self._download(media, early))
        try:
            return await self._run(media, notice, spooled)
        finally:
            await _discard(spooled)

    async def _load(self, media_id: str) -> Media | None:
        with self._telemetry.step("load"):
            return await self._repo.get(media_id)

    async def _deliver_pending(self, media_id: str) -> None:
        with self._telemetry.step("outbox"):
            await self._bus.deliver_pending(media_id)

    async def _run(
        self, media: Media, notice: ObjectCreated, spooled: asyncio.Task[tuple[str, Verdicts]]
    ) -> Outcome:
        media_id = media.id
        with self._telemetry.step("start"):
            if media.status is MediaStatus.PENDING:
                started = media.transition(MediaStatus.PROCESSING, utcnow(), sequencer=notice.sequencer)
                event = _event_of(started)
                try:
                    await self._repo.save(
                        started, expected_version=media.version, previous=media, events=_events(event)
                    )
                except Conflict:
                    current = await self._repo.get(media_id)
                    if current is None or current.status is not MediaStatus.PROCESSING:
                        if current is not None and current.status in TERMINAL:
                            await self._settle(current, None)
                        return Outcome.DUPLICATE
                    started = current  # another delivery started it: the conditional end decides
                else:
                    if event is not None:
                        await self._bus.publish(event)
                media = started
            # Found PROCESSING (a worker died): its event went out, or just did (deliver_pending).

        with self._telemetry.step("verify"):
            done = await self._process(media, spooled)
        done = dataclasses.replace(done, sequencer=newest(media.sequencer, notice.sequencer))
        outcome_event = _event_of(done)
        try:
            with self._telemetry.step("save"):
                await self._repo.save(
                    done, expected_version=media.version, previous=media, events=_events(outcome_event)
                )
        except Conflict:
            # Another worker (or a redelivery) got there first; its outcome stands.
            current = await self._repo.get(media_id)
            if current is not None and current.status in TERMINAL:
                await self._settle(current, None)
            return Outcome.DUPLICATE
        with self._telemetry.step("announce"):
            # Independent writes (Redis, the audit table): at once.
            await asyncio.gather(
                self._settle(done, outcome_event),
                *([self._auditor.outcome(done)] if self._auditor is not None else []),
            )
        log.info(
            "media processed",
            extra={"media_id": media_id, "status": done.status.value, "request_id": media.request_id},
        )
        return _OUTCOME_FOR[done.status]

    async def _announce_replica(self, media_id: str, media: Media | None) -> Outcome:
        """A replica region: say what the home region decided, once this region's table has it.
        Until then the event is retried (the table usually replicates within a second)."""
        if media is not None and media.status is MediaStatus.DELETED:
            return Outcome.IGNORED
        if media is None or media.status not in TERMINAL:
            if media is None and not self._may_still_arrive(media_id):
                return Outcome.IGNORED
            raise RecordNotHereYet(f"the outcome of {media_id} has not replicated here yet")
        event_type = _EVENT_FOR.get(media.status)
        if event_type is not None:
            with self._telemetry.step("announce"):
                # The bus only: notifiers (SNS, webhook) fire in the home region, once.
                await self._bus.publish(MediaEvent(event_type, media, media.completed_at or media.updated_at))
        return Outcome.DUPLICATE

    def _may_still_arrive(self, media_id: str) -> bool:
        if self._await_records_for <= timedelta(0):
            return False
        try:
            created = ULID.from_str(media_id).datetime
        except ValueError:
            return False
        return utcnow() - created < self._await_records_for

    async def _recheck(self, media: Media, notice: ObjectCreated) -> Outcome:
        """A newer object event for a key already COMPLETED: the object was replaced after it
        was verified (real S3 refuses that with If-None-Match; this is defence in depth). The
        same bytes again change nothing; other bytes are taken out of view for review."""
        workdir = await asyncio.to_thread(tempfile.mkdtemp, prefix="mg-job-", dir=self._workdir)
        try:
            verdicts = await self._spool(media, os.path.join(workdir, "upload"))
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        reason = verdicts if isinstance(verdicts, str) else next((r for r in verdicts.values() if r), None)
        if reason is None:
            changed = dataclasses.replace(media, sequencer=notice.sequencer, version=media.version + 1)
        else:
            changed = media.transition(
                MediaStatus.QUARANTINED,
                utcnow(),
                quarantine_kind="replaced",
                reject_reason=f"object replaced after verification: {reason}",
                review_round=media.review_round + 1,
                sequencer=notice.sequencer,
            )
        event = _event_of(changed) if reason is not None else None
        try:
            await self._repo.save(
                changed, expected_version=media.version, previous=media, events=_events(event)
            )
        except Conflict:
            return Outcome.DUPLICATE
        await self._settle(changed, event)
        return Outcome.DUPLICATE if reason is None else Outcome.QUARANTINED

    async def _download(self, media: Media, early: _EarlyOpen) -> tuple[str, Verdicts]:
        """A work directory with the upload spooled into it once, and the checks' verdicts. The
        directory is removed here if this fails or is cancelled, else by whoever takes it."""
        workdir = await asyncio.to_thread(tempfile.mkdtemp, prefix="mg-job-", dir=self._workdir)
        try:
            return workdir, await self._spool(media, os.path.join(workdir, "upload"), early.take())
        except BaseException:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, workdir, True))
            raise

    async def _process(self, media: Media, spooled: asyncio.Task[tuple[str, Verdicts]]) -> Media:
        """Take the spooled upload, run the steps, return the record's final form."""
        workdir, verdicts = await spooled
        try:
            path = os.path.join(workdir, "upload")
            if isinstance(verdicts, str):
                return media.transition(MediaStatus.REJECTED, utcnow(), reject_reason=verdicts)
            job = Job(media=media, path=path, workdir=workdir, check_verdicts=verdicts)
            verdict = await self._run_steps(job)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        now = utcnow()
        if verdict is None:
            return media.transition(MediaStatus.COMPLETED, now, **_findings(job))
        if verdict.status is MediaStatus.QUARANTINED:
            changes = {**_findings(job), "reject_reason": verdict.reason, "quarantine_kind": verdict.kind}
            if verdict.kind == "malware":
                # Kept for review under a prefix nothing serves; the upload key is emptied after
                # the record says where the bytes went (see _settle).
                quarantined = f"{self._quarantine_prefix}{media.id}"
                await self._blobs.copy(media.object_key, quarantined)
                changes["object_key"] = quarantined
            return media.transition(MediaStatus.QUARANTINED, now, **changes)
        return media.transition(verdict.status, now, reject_reason=verdict.reason)

    async def _run_steps(self, job: Job) -> Verdict | None:
        for step in self._steps:
            if isinstance(step, Prefetching):
                job.prefetched[step.name] = asyncio.ensure_future(step.prefetch(job))
        try:
            return await self._each_step(job)
        finally:
            # Reads a verdict made useless: stopped (their errors were not the job's).
            for fetched in job.prefetched.values():
                fetched.cancel()
            await asyncio.gather(*job.prefetched.values(), return_exceptions=True)

    async def _each_step(self, job: Job) -> Verdict | None:
        for step in self._steps:
            try:
                verdict = await step.run(job)
            except MediaRefused as exc:
                verdict = Verdict(MediaStatus.REJECTED, exc.reason)
            if verdict is not None:
                log.info(
                    "pipeline verdict",
                    extra={"media_id": job.media.id, "step": step.name, "status": verdict.status.value},
                )
                return verdict
        return None

    async def _spool(
        self, media: Media, path: str, opened: Awaitable[BlobStream | None] | None = None
    ) -> dict[str, str | None] | str:
        """Download once, streamed to `path`, feeding every check on the way (`opened`: the
        object's GET, already asked for). A string when the object is refused before its bytes
        are read."""
        blob = await (opened if opened is not None else self._blobs.open(media.object_key))
        if blob is None:
            return "object missing"
        try:
            info = blob.info
            # Cheap refusals first: no need to read gigabytes of the wrong size.
            if info.size != media.size:
                return f"size mismatch: declared {media.size} bytes, received {info.size}"
            if info.content_type is not None and info.content_type.lower() != media.content_type:
                return f"type mismatch: declared {media.content_type}, sent as {info.content_type}"
            checks = [make(media) for make in self._checks]
            out: BinaryIO = await asyncio.to_thread(open, path, "wb")
            try:
                async for chunk in blob.chunks:
                    # Hashing and disk writes off the loop: a 1 MiB chunk is milliseconds of CPU.
                    await asyncio.to_thread(_absorb, out, checks, chunk)
            finally:
                await asyncio.to_thread(out.close)
        finally:
            await blob.close()
        return {check.name: check.verdict() for check in checks}

    async def _settle(self, media: Media, event: MediaEvent | None) -> None:
        """What must follow a final write, safe to repeat: empty the upload key of quarantined
        malware, then announce: `event`, the one this write put in the outbox; None when the
        write was earlier (a redelivery): whatever of it is still in the outbox."""
        original = object_key_for(self._prefix, media.id)
        if media.status is MediaStatus.QUARANTINED and media.object_key != original:
            await self._blobs.delete(original)
        if event is not None:
            await self._bus.publish(event)
        else:
            await self._bus.deliver_pending(media.id)
        if media.status is MediaStatus.COMPLETED:
            # Each notifier remembers what it delivered: calling again on a redelivery is how a
            # notification that failed last time gets sent.
            completed = event or _event_of(media)
            assert completed is not None  # COMPLETED has an event
            for notifier in self._notifiers:
                await notifier.notify(completed)

    async def sweep_expired(self, *, limit: int = 100) -> int:
        """Remove PENDING uploads whose bytes never came (moto never runs DynamoDB TTL, and real
        TTL deletes up to days late). Oldest first; stops at the first one still in time.
        Only the home region sweeps: a replica's delete would race the home's completion."""
        if self._announce_only:
            return 0
        now = utcnow()
        removed = 0
        for media in await self._repo.oldest_with_status(MediaStatus.PENDING, limit=limit):
            if not media.is_expired(now):
                break
            try:
                await self._repo.delete(media)
            except Conflict:
                continue  # its upload arrived meanwhile: the worker owns it now
            if media.multipart_upload_id is not None:
                # Parts are billed until aborted; the bucket's lifecycle rule is the backstop.
                await self._blobs.abort_multipart(media.object_key, media.multipart_upload_id)
            await self._blobs.delete(media.object_key)
            removed += 1
        return removed


class _EarlyOpen:
    """The upload's GET, started before its record is read. Whoever takes it closes it; if
    nobody does, `discard` stops it or closes what it opened."""

    def __init__(self, blobs: BlobStore, key: str) -> None:
        self._opening = asyncio.create_task(blobs.open(key))
        self._taken = False

    async def take(self) -> BlobStream | None:
        self._taken = True
        try:
            return await self._opening
        except asyncio.CancelledError:
            await self._close_opened()  # opened just as its taker was cancelled
            raise

    async def discard(self) -> None:
        if self._taken:
            return
        if not self._opening.done():
            self._opening.cancel()
            await asyncio.wait({self._opening})
        await self._close_opened()

    async def _close_opened(self) -> None:
        if not self._opening.done() or self._opening.cancelled():
            return
        if self._opening.exception() is None and (blob := self._opening.result()) is not None:
            await blob.close()


def _event_of(media: Media) -> MediaEvent | None:
    event_type = _EVENT_FOR.get(media.status)
    if event_type is None:
        return None
    return MediaEvent(event_type, media, media.completed_at or media.updated_at)


def _events(event: MediaEvent | None) -> tuple[MediaEvent, ...]:
    return () if event is None else (event,)


Verdicts = dict[str, str | None] | str  # the streaming checks' verdicts, or why the object was refused


async def _discard(spooled: asyncio.Task[tuple[str, Verdicts]]) -> None:
    """A download nobody took (the notice ended early): stop it, or remove what it made (again,
    harmlessly, when the steps took it)."""
    if not spooled.done():
        spooled.cancel()
        await asyncio.wait({spooled})
    if spooled.cancelled() or spooled.exception() is not None:
        return  # it removed its directory itself
    workdir, _ = spooled.result()
    await asyncio.to_thread(shutil.rmtree, workdir, True)


def _sequence(sequencer: str) -> str:
    # S3: compare sequencers of one key as hex strings, the shorter left-padded with zeros.
    return sequencer.upper().rjust(64, "0")


def is_older(sequencer: str | None, than: str | None) -> bool:
    """Whether an event came before another for the same key; unknown (moto) is never older."""
    return sequencer is not None and than is not None and _sequence(sequencer) < _sequence(than)


def newest(*sequencers: str | None) -> str | None:
    known = [sequencer for sequencer in sequencers if sequencer]
    return max(known, key=_sequence) if known else None


def _absorb(out: BinaryIO, checks: list[Check], chunk: bytes) -> None:
    out.write(chunk)
    for check in checks:
        check.feed(chunk)


def _findings(job: Job) -> dict[str, object]:
    findings: dict[str, object] = {"variants": job.variants, "duplicate_of": job.duplicate_of}
    if job.facts is not None:
        findings.update(width=job.facts.width, height=job.facts.height)
    if job.video is not None:
        findings.update(width=job.video.width, height=job.video.height, duration_ms=job.video.duration_ms)
    elif job.derived is not None:
        findings.update(width=job.derived.width, height=job.derived.height)
    if job.derived is not None:
        findings.update(
            blurhash=job.derived.blurhash,
            phash=job.derived.phash,
        )
    return findings
