"""updateMedia (services/library/editing.py): the owner's edits, their audit entries and events;
and the newcomer's guard: every field updateMedia accepts is normalised, audited and moderated
(docs/extending.md). Adding an owner-editable field anywhere but OWNER_TEXT_FIELDS fails here."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from infra.media.moderation import LocalRuleModerator
from schema.types.editing import UpdateMediaInput
from services.core.audit import Auditor
from services.core.auth import Principal
from services.core.errors import BadUserInput, Conflict, NotFound, Unauthenticated
from services.core.events import MediaEventType
from services.core.media import OWNER_TEXT_FIELDS, Media, MediaStatus, Visibility, owner_text
from services.core.pagination import CursorCodec
from services.library.editing import NORMALISE, EditingService, MediaChanges
from tests.fakes import InMemoryAuditLog, InMemoryEventBus, InMemoryMediaRepository, make_media

ALICE = Principal("alice")
BLOCKED = "forbiddenword"


@dataclasses.dataclass
class Env:
    editing: EditingService
    repo: InMemoryMediaRepository
    bus: InMemoryEventBus
    audit: InMemoryAuditLog

    async def add(self, status: MediaStatus = MediaStatus.COMPLETED, owner: str = "alice") -> Media:
        media = make_media(f"{owner}{len(self.repo)}".encode(), owner_id=owner, status=status)
        await self.repo.create(media)
        return media

    def actions(self, media_id: str) -> list[tuple[str, dict[str, tuple[object, object]]]]:
        return [(e.action, e.changes) for (m, _), e in sorted(self.audit.items.items()) if m == media_id]


def make_env(*, settled_only: bool = False) -> Env:
    repo, bus, audit = InMemoryMediaRepository(), InMemoryEventBus(), InMemoryAuditLog()
    auditor = Auditor(audit, CursorCodec(b"k" * 32))
    return Env(EditingService(repo, bus, auditor=auditor, settled_only=settled_only), repo, bus, audit)


@pytest.fixture
def env() -> Env:
    return make_env()


# The newcomer's guard --------------------------------------------------------------------------


def sample(field: str, text: str) -> object:
    """An input for the owner-written field `field` that carries `text`."""
    current = getattr(make_media(b"x"), field)
    return (text,) if isinstance(current, tuple) else text


def test_every_field_updatemedia_accepts_is_declared_once() -> None:
    accepted = {field.name for field in dataclasses.fields(MediaChanges)}
    assert accepted == {"visibility", *OWNER_TEXT_FIELDS}
    assert set(NORMALISE) == set(OWNER_TEXT_FIELDS)  # each is checked and normalised
    media_fields = {field.name for field in dataclasses.fields(Media)}
    assert set(OWNER_TEXT_FIELDS) <= media_fields


def test_the_graphql_input_offers_exactly_what_the_service_accepts() -> None:
    definition = UpdateMediaInput.__strawberry_definition__  # type: ignore[attr-defined]
    offered = {field.python_name for field in definition.fields}
    assert offered == {field.name for field in dataclasses.fields(MediaChanges)}
    given: dict[str, Any] = {
        name: list(value) if isinstance(value := sample(name, "x"), tuple) else value
        for name in OWNER_TEXT_FIELDS
    }
    changes = UpdateMediaInput(**given).to_changes()
    assert all(getattr(changes, name) is not None for name in OWNER_TEXT_FIELDS)  # none dropped


@pytest.mark.parametrize("field", OWNER_TEXT_FIELDS)
async def test_each_owner_written_field_is_audited_and_moderated(env: Env, field: str) -> None:
    media = await env.add()
    changes = MediaChanges(**{field: sample(field, BLOCKED)})  # type: ignore[arg-type]
    updated = await env.editing.update(ALICE, media.id, changes)
    before, after = media.to_record()[field], updated.to_record()[field]
    assert before != after
    assert env.actions(media.id) == [("UPDATED", {field: (before, after)})]  # audited
    assert BLOCKED in owner_text(updated)
    verdict = await LocalRuleModerator(blocked_terms=[BLOCKED]).moderate(updated, "unused")
    assert verdict.labels == (f"term:{BLOCKED}",)  # moderated


# The rules ---------------------------------------------------------------------------------------


async def test_an_edit_is_saved_announced_and_audited(env: Env) -> None:
    media = await env.add()
    updated = await env.editing.update(
        ALICE, media.id, MediaChanges(title=" Dusk ", tags=("#Beach", "beach"), visibility=Visibility.PUBLIC)
    )
    assert (updated.title, updated.tags, updated.visibility) == ("Dusk", ("beach",), Visibility.PUBLIC)
    assert updated.version == media.version + 1
    assert await env.repo.get(media.id) == updated
    assert [(e.type, e.media) for e in env.bus.published] == [(MediaEventType.UPDATED, updated)]
    assert env.actions(media.id) == [
        ("UPDATED", {"title": ("", "Dusk"), "tags": ([], ["beach"])}),
        ("VISIBILITY_CHANGED", {"visibility": ("PRIVATE", "PUBLIC")}),
    ]


async def test_an_edit_that_changes_nothing_writes_nothing(env: Env) -> None:
    media = await env.add()
    assert await env.editing.update(ALICE, media.id, MediaChanges(title="", tags=())) == media
    assert await env.editing.update(ALICE, media.id, MediaChanges()) == media
    assert env.bus.published == [] and env.audit.items == {}


async def test_only_the_owner_edits_and_anyone_else_finds_nothing(env: Env) -> None:
    media = await env.add()
    for viewer in (Principal("mallory"), Principal("root", roles=frozenset({"admin"}))):
        with pytest.raises(NotFound):
            await env.editing.update(viewer, media.id, MediaChanges(title="mine now"))
    with pytest.raises(Unauthenticated):
        await env.editing.update(None, media.id, MediaChanges(title="x"))
    with pytest.raises(NotFound):
        await env.editing.update(ALICE, "absent", MediaChanges(title="x"))


async def test_deleted_media_cannot_be_edited(env: Env) -> None:
    media = await env.add(status=MediaStatus.DELETED)
    with pytest.raises(NotFound):
        await env.editing.update(ALICE, media.id, MediaChanges(title="x"))


async def test_bad_input_is_refused_before_any_write(env: Env) -> None:
    media = await env.add()
    with pytest.raises(BadUserInput):
        await env.editing.update(ALICE, media.id, MediaChanges(tags=("two words",)))
    with pytest.raises(BadUserInput):
        await env.editing.update(ALICE, media.id, MediaChanges(title="x" * 201))
    assert await env.repo.get(media.id) == media and env.bus.published == []


async def test_a_concurrent_write_is_a_conflict(env: Env) -> None:
    media = await env.add()

    class Raced(InMemoryMediaRepository):
        async def save(self, media: Media, **kwargs: Any) -> None:
            raise Conflict("changed meanwhile")

    raced = Raced()
    await raced.create(media)
    with pytest.raises(Conflict):
        await EditingService(raced, env.bus).update(ALICE, media.id, MediaChanges(title="late"))
    assert env.bus.published == []


@pytest.mark.parametrize("status", [MediaStatus.PENDING, MediaStatus.PROCESSING])
async def test_a_replica_region_edits_settled_media_only(status: MediaStatus) -> None:
    env = make_env(settled_only=True)
    unsettled, settled = await env.add(status=status), await env.add()
    with pytest.raises(Conflict):
        await env.editing.update(ALICE, unsettled.id, MediaChanges(title="x"))
    assert (await env.editing.update(ALICE, settled.id, MediaChanges(title="x"))).title == "x"
