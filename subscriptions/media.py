"""uploadCompleted, mediaEvents and mediaStatus: generators over the service's event streams."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from schema.types.context import Info
from schema.types.event import MediaEvent
from schema.types.media import Media, decode_media_id


async def upload_completed(info: Info, media_id: str | None = None) -> AsyncGenerator[Media, None]:
    context = info.context
    wanted = decode_media_id(media_id) if media_id is not None else None
    async for media in context.services.gallery.completions(context.principal, wanted):
        yield Media.from_model(media)


async def media_events(info: Info, since: str | None = None) -> AsyncGenerator[MediaEvent, None]:
    context = info.context
    async for event in context.services.gallery.events(context.principal, since):
        yield MediaEvent.from_model(event)


async def media_status(
    info: Info, media_id: str, since: str | None = None
) -> AsyncGenerator[MediaEvent, None]:
    context = info.context
    async for event in context.services.gallery.status(context.principal, decode_media_id(media_id), since):
        yield MediaEvent.from_model(event)
