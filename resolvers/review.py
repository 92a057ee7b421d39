"""reviewMedia, reportMedia and the review queue."""

from __future__ import annotations

import strawberry

from schema.types.context import Info
from schema.types.media import Media, decode_media_id
from schema.types.review import ReviewDecision


async def review_queue(info: Info, first: int = 50) -> list[Media]:
    context = info.context
    return [
        Media.from_model(media)
        for media in await context.services.review.queue(context.principal, limit=first)
    ]


async def review_media(info: Info, id: strawberry.ID, decision: ReviewDecision) -> Media:
    context = info.context
    media = await context.services.review.review(context.principal, decode_media_id(id), decision)
    return Media.from_model(media)


async def report_media(info: Info, id: strawberry.ID, reason: str) -> bool:
    context = info.context
    await context.services.review.report(context.principal, decode_media_id(id), reason)
    return True
