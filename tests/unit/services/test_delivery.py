"""UrlMinter: reuse while fresh, re-sign when the record changed or the owner was forgotten."""

from __future__ import annotations

from datetime import timedelta

from services.core.media import MediaStatus, Visibility, utcnow
from services.core.ports import CachedUrl
from services.library.delivery import UrlMinter
from tests.fakes import make_media


class CountingSigner:
    def __init__(self) -> None:
        self.signed = 0

    async def sign(self, key: str, *, expires_in: int) -> str:
        self.signed += 1
        return f"https://cdn.invalid/{key}?n={self.signed}&ttl={expires_in}"


class DictCache:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, int, str], CachedUrl] = {}
        self.generation: dict[str, int] = {}

    async def get_many(self, entries: list[tuple[str, str]]) -> list[CachedUrl | None]:
        return [self.entries.get((owner, self.generation.get(owner, 0), key)) for owner, key in entries]

    async def put_many(self, entries: list[tuple[str, str, CachedUrl]]) -> None:
        for owner_id, key, url in entries:
            self.entries[(owner_id, self.generation.get(owner_id, 0), key)] = url

    async def forget_owner(self, owner_id: str) -> None:
        self.generation[owner_id] = self.generation.get(owner_id, 0) + 1


async def test_reuse_then_resign_on_change_and_forget() -> None:
    signer, cache = CountingSigner(), DictCache()
    minter = UrlMinter(signer, cache, ttl_s=300)
    media = make_media(b"x", owner_id="alice", status=MediaStatus.COMPLETED, visibility=Visibility.PUBLIC)

    first = await minter.url(media, media.object_key)
    assert await minter.url(media, media.object_key) == first
    assert signer.signed == 1

    changed = media.edit(utcnow(), visibility=Visibility.PRIVATE)  # a new version
    assert await minter.url(changed, changed.object_key) != first
    assert signer.signed == 2

    await minter.forget("alice")
    await minter.url(changed, changed.object_key)
    assert signer.signed == 3


async def test_a_url_past_half_its_life_is_not_handed_out_again() -> None:
    signer, cache = CountingSigner(), DictCache()
    minter = UrlMinter(signer, cache, ttl_s=300)
    media = make_media(b"x", owner_id="alice", status=MediaStatus.COMPLETED)
    key = f"{media.id}:{media.version}:{media.object_key}"
    await cache.put_many([("alice", key, CachedUrl("https://old", utcnow() + timedelta(seconds=100)))])
    assert await minter.url(media, media.object_key) != "https://old"
    assert signer.signed == 1
