"""The per-request (or per-WebSocket-connection) context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader

from services.bundle import Services
from services.core.auth import Principal
from services.core.media import Media
from services.core.ports import MediaStats


@dataclass(slots=True)
class Context:
    services: Services
    request_id: str
    principal: Principal | None = None
    client_ip: str | None = None  # the TCP peer, or the client named by a trusted proxy
    production: bool = False  # the production profile: no introspection, no suggestions
    # The worker processes that parse and validate documents the caches do not know, if any
    # (schema/documents.py DocumentExaminer; schema/document_workers.py).
    document_workers: object = None
    # graphql-transport-ws: the connection_init payload; Strawberry sets it on the context.
    connection_params: dict[str, Any] | None = field(default=None)
    _loaders: dict[str, DataLoader[Any, Any]] = field(default_factory=dict)

    # Loaders batch the reads of one page (no N+1) and never cache: a WebSocket context lives
    # as long as its connection, and counters must not go stale across its operations.
    def stats_loader(self) -> DataLoader[str, MediaStats]:
        async def load(ids: list[str]) -> list[MediaStats]:
            stats = await self.services.engagement.stats(ids)
            return [stats.get(i, MediaStats()) for i in ids]

        return self._loader("stats", load)

    def liked_loader(self) -> DataLoader[str, bool]:
        async def load(ids: list[str]) -> list[bool]:
            liked = await self.services.engagement.liked_by(self.principal, ids)
            return [i in liked for i in ids]

        return self._loader("liked", load)

    def url_loader(self) -> DataLoader[tuple[Media, str | None], str | None]:
        """(media, variant name, or None for the media's own URL) -> its URL under the
        visibility rules: every URL of a page in one visibility check and one cache read."""

        async def load(wanted: list[tuple[Media, str | None]]) -> list[str | None]:
            return await self.services.gallery.urls(self.principal, wanted)

        return self._loader("url", load)

    def _loader(self, name: str, load: Any) -> DataLoader[Any, Any]:
        if name not in self._loaders:
            self._loaders[name] = DataLoader(load_fn=load, cache=False)
        return self._loaders[name]


Info = strawberry.Info[Context, None]
