"""Prefetching a page's URLs, counters and likes in the resolver that lists it.

The field resolvers of Media and MediaVariant batch through DataLoaders (schema/types/context.py),
which is correct wherever a Media comes from, but costs an awaitable per field per item: on a
50-item page asking for `url`, two thumbnail URLs and the counters, ~250 futures that graphql-core
gathers one by one, more than the reads themselves. A resolver that lists media knows the page
before its fields run: it makes the same batched calls up front, for the fields the document
selects, and hands the answers to the Media it builds. Their fields then answer synchronously;
a Media built anywhere else (a mutation's result, `duplicateOf`) falls back to the loaders.

Same calls, same viewer, same request: the answers are what the loaders would give.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode

from schema.types.context import Info
from services.core.media import Media as MediaModel
from services.core.ports import MediaStats

# The variants a Media exposes a URL for besides its own (thumbnails, poster).
VARIANTS = ("thumb-small", "thumb-large", "poster")
_URL_FIELDS = {"url"}
_STATS_FIELDS = {"likeCount", "viewCount"}
_LIKED_FIELDS = {"likedByMe"}
_ANY = _URL_FIELDS | _STATS_FIELDS | _LIKED_FIELDS


@dataclass(slots=True)
class Prefetched:
    urls: dict[tuple[str, str | None], str | None] | None = None  # (media id, variant or None)
    stats: dict[str, MediaStats] | None = None
    liked: set[str] | None = None
    _no_stats: MediaStats = field(default_factory=MediaStats)

    def stats_of(self, media_id: str) -> MediaStats | None:
        if self.stats is None:
            return None
        return self.stats.get(media_id, self._no_stats)


def selected_names(info: Info) -> set[str]:
    """The names of every field selected below the current one, through fragments."""
    raw = info._raw_info
    names: set[str] = set()
    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                names.add(node.name.value)
                walk(node.selection_set)
            elif isinstance(node, InlineFragmentNode):
                walk(node.selection_set)
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
                seen.add(node.name.value)
                fragment = raw.fragments.get(node.name.value)
                if fragment is not None:
                    walk(fragment.selection_set)

    for field_node in raw.field_nodes:
        walk(field_node.selection_set)
    return names


async def prefetch(info: Info, items: list[MediaModel]) -> Prefetched | None:
    """The batched reads the selected fields of `items` need, made at once; None if none."""
    wanted = selected_names(info) & _ANY
    if not wanted or not items:
        return None
    context = info.context
    ids = [media.id for media in items]
    prefetched = Prefetched()

    async def urls() -> None:
        keys: list[tuple[MediaModel, str | None]] = []
        for media in items:
            keys.append((media, None))
            keys += [(media, name) for name in VARIANTS if media.variant(name) is not None]
        found = await context.services.gallery.urls(context.principal, keys)
        prefetched.urls = {(media.id, name): url for (media, name), url in zip(keys, found, strict=True)}

    async def stats() -> None:
        prefetched.stats = await context.services.engagement.stats(ids)

    async def liked() -> None:
        prefetched.liked = await context.services.engagement.liked_by(context.principal, ids)

    reads = []
    if wanted & _URL_FIELDS:
        reads.append(urls())
    if wanted & _STATS_FIELDS:
        reads.append(stats())
    if wanted & _LIKED_FIELDS:
        reads.append(liked())
    await asyncio.gather(*reads)
    return prefetched
