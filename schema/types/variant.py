"""MediaVariant: a derived image (sanitised, WebP) of a media item."""

from __future__ import annotations

from typing import Self, cast

import strawberry

from schema.types.context import Info
from schema.types.prefetch import Prefetched
from services.core.media import Media as MediaModel
from services.core.media import Variant


@strawberry.type(description="A derived image: EXIF and location removed, orientation applied, WebP.")
class MediaVariant:
    name: str = strawberry.field(description="display, thumb-large (640 px) or thumb-small (160 px).")
    width: int
    height: int
    content_type: str
    _media: strawberry.Private[MediaModel]
    _prefetched: strawberry.Private[Prefetched | None] = None

    @strawberry.field(description="A short-lived URL; null unless the media is COMPLETED and visible.")
    def url(self, info: Info) -> str | None:
        # As Media.url: prefetched by the listing, or the request's loader (awaited by graphql-core).
        if self._prefetched is not None and self._prefetched.urls is not None:
            return self._prefetched.urls.get((self._media.id, self.name))
        return cast(str | None, info.context.url_loader().load((self._media, self.name)))

    @classmethod
    def from_model(cls, media: MediaModel, variant: Variant, prefetched: Prefetched | None = None) -> Self:
        return cls(
            name=variant.name,
            width=variant.width,
            height=variant.height,
            content_type=variant.content_type,
            _media=media,
            _prefetched=prefetched,
        )
