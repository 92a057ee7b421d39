"""The root types and the Schema with its extensions."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator

import strawberry
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from resolvers import media as media_resolvers
from resolvers import uploads as upload_resolvers
from schema.extensions import ErrorCodes
from schema.types.connection import MediaConnection
from schema.types.event import MediaEvent
from schema.types.media import Media
from schema.types.scalars import SCALARS
from schema.types.upload import CreateUploadPayload
from subscriptions import media as media_subscriptions

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000
# Built once: the limiters make a new rule class per instance, and ValidationCache keys on the
# rule classes, so per-request limiters would make every validation a cache miss (~4x slower).
_LIMIT_RULES = [
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
]


@strawberry.type
class Query:
    node: relay.Node | None = relay.node(
        description="Any object by its global id, under the same visibility rules."
    )

    media: Media | None = strawberry.field(
        resolver=media_resolvers.media,
        description="One media item, or null if it does not exist or is not visible to you.",
    )
    my_media: MediaConnection = strawberry.field(
        resolver=media_resolvers.my_media,
        description="Your media, every status, newest first.",
    )


@strawberry.type
class Mutation:
    create_upload: CreateUploadPayload = strawberry.mutation(
        resolver=upload_resolvers.create_upload,
        description="Declare an upload; returns the PENDING media and the signed PUT to send the bytes with.",
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Your uploads as they become COMPLETED; with mediaId, just that one (answers "
        "at once if it already is; errors if it was refused)."
    )
    async def upload_completed(
        self, info: strawberry.Info, media_id: strawberry.ID | None = None
    ) -> AsyncGenerator[Media, None]:
        async for media in media_subscriptions.upload_completed(info, media_id):
            yield media

    @strawberry.subscription(
        description="Every status change of media you own. With `since` (an eventId you received), "
        "first the events after it, in order, then live ones: no gap, no duplicate. A `since` older "
        "than the kept history fails with BAD_USER_INPUT, extensions.reason SINCE_EXPIRED: refetch."
    )
    async def media_events(
        self, info: strawberry.Info, since: str | None = None
    ) -> AsyncGenerator[MediaEvent, None]:
        async for event in media_subscriptions.media_events(info, since):
            yield event


@functools.cache
def build_schema() -> strawberry.Schema:
    """The schema, built once per process (Strawberry's type registry is global)."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            # Factories: a fresh extension per operation (shared instances leak request state).
            ErrorCodes,
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
            lambda: AddValidationRules(_LIMIT_RULES),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        ],
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALARS),
    )
