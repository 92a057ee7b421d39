"""The root types and the Schema with its extensions."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from resolvers import account as account_resolvers
from resolvers import editing as editing_resolvers
from resolvers import media as media_resolvers
from resolvers import multipart as multipart_resolvers
from resolvers import retention as retention_resolvers
from resolvers import review as review_resolvers
from resolvers import sessions as session_resolvers
from resolvers import social as social_resolvers
from resolvers import uploads as upload_resolvers
from schema.documents import DocumentPipeline
from schema.extension_runner import LeanExtensionsRunner
from schema.extensions import ErrorCodes
from schema.limits import MAX_TOKENS, PRODUCTION_RULES, RULES, document_limits
from schema.observability import Observability
from schema.rate_limits import RateLimits
from schema.request_errors import RequestErrorsExecutor, log_request_errors
from schema.types import plain_resolvers
from schema.types.account import AccountDeletion, DataExport
from schema.types.audit import AuditEntryConnection
from schema.types.connection import MediaConnection
from schema.types.event import MediaEvent
from schema.types.media import Media
from schema.types.multipart import UploadPartUrl, UploadProgress
from schema.types.scalars import SCALARS
from schema.types.session import SessionTokens
from schema.types.social import Friendship, MediaViewConnection, UserConnection
from schema.types.upload import CreateUploadPayload
from services.core.pagination import MAX_PAGE_SIZE
from subscriptions import media as media_subscriptions

_LIMITS = document_limits(MAX_PAGE_SIZE)


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
        description="Your media, every status, newest first; filter by status, tag, creation time.",
    )
    user_media: MediaConnection = strawberry.field(
        resolver=media_resolvers.user_media,
        description="Another user's gallery: only what you may see, newest first.",
    )
    media_by_tag: MediaConnection = strawberry.field(
        resolver=media_resolvers.media_by_tag,
        description="Hashtag search across users: yours, PUBLIC, and FRIENDS media of your friends.",
    )
    feed: MediaConnection = strawberry.field(
        resolver=media_resolvers.feed,
        description="PUBLIC media, ranked. Ranked pages come from one snapshot per walk.",
    )
    upload_progress: UploadProgress = strawberry.field(
        resolver=multipart_resolvers.upload_progress,
        description="The parts S3 already has of your multipart upload: after a crash, send only "
        "the missing ones.",
    )
    review_queue: list[Media] = strawberry.field(
        resolver=review_resolvers.review_queue,
        description="Admins: QUARANTINED media waiting for review, oldest first.",
    )
    deleted_media: MediaConnection = strawberry.field(
        resolver=retention_resolvers.deleted_media,
        description="Your trash, newest first: deleted media, each restorable until its purgeAfter.",
    )
    media_audit_log: AuditEntryConnection = strawberry.field(
        resolver=retention_resolvers.media_audit_log,
        description="Who did what to a media item and when, oldest first (owner and admins; kept "
        "after the purge).",
    )
    friends: UserConnection = strawberry.field(
        resolver=social_resolvers.friends,
        description="Your friends.",
    )
    friend_requests: UserConnection = strawberry.field(
        resolver=social_resolvers.friend_requests,
        description="Friend requests waiting for your answer.",
    )
    media_views: MediaViewConnection = strawberry.field(
        resolver=social_resolvers.media_views,
        description="Who viewed your media and when, newest first (owner and admins).",
    )


@strawberry.type
class Mutation:
    create_upload: CreateUploadPayload = strawberry.mutation(
        resolver=upload_resolvers.create_upload,
        description="Declare an upload; returns the PENDING media and the signed PUT (or, for large "
        "files, the multipart plan) to send the bytes with, or, when you already have these exact "
        "bytes COMPLETED, a COMPLETED copy and no upload.",
    )
    upload_part_urls: list[UploadPartUrl] = strawberry.mutation(
        resolver=multipart_resolvers.upload_part_urls,
        description="Fresh signed PUTs for parts of your multipart upload; a part's sha256 is "
        "signed when given.",
    )
    complete_upload: Media = strawberry.mutation(
        resolver=multipart_resolvers.complete_upload,
        description="Assemble a multipart upload from its parts (checked against S3 and the declared size). "
        "The media stays PENDING until the worker has verified the whole file.",
    )
    abort_upload: bool = strawberry.mutation(
        resolver=multipart_resolvers.abort_upload,
        description="Give up a PENDING upload: its parts (or bytes) and its record are removed.",
    )
    update_media: Media = strawberry.mutation(
        resolver=editing_resolvers.update_media,
        description="Change title, tags or visibility of your media.",
    )
    like_media: Media = strawberry.mutation(
        resolver=editing_resolvers.like_media,
        description="Like media you can see; liking twice counts once.",
    )
    unlike_media: Media = strawberry.mutation(
        resolver=editing_resolvers.unlike_media,
        description="Take a like back.",
    )
    request_friend: Friendship = strawberry.mutation(
        resolver=social_resolvers.request_friend,
        description="Ask a user to be friends (accepts at once if they already asked you).",
    )
    accept_friend: Friendship = strawberry.mutation(
        resolver=social_resolvers.accept_friend,
        description="Accept a pending friend request.",
    )
    remove_friend: bool = strawberry.mutation(
        resolver=social_resolvers.remove_friend,
        description="End a friendship, or withdraw/decline a request.",
    )
    block_user: bool = strawberry.mutation(
        resolver=social_resolvers.block_user,
        description="Hide everything of each of you from the other, and end any friendship.",
    )
    review_media: Media = strawberry.mutation(
        resolver=review_resolvers.review_media,
        description="Admins: release (COMPLETED) or reject (REJECTED) QUARANTINED media.",
    )
    report_media: bool = strawberry.mutation(
        resolver=review_resolvers.report_media,
        description="Send media you can see to the review queue; it is hidden until reviewed.",
    )
    delete_media: Media = strawberry.mutation(
        resolver=retention_resolvers.delete_media,
        description="Move media to the trash (owner or admin): it vanishes everywhere at once and "
        "can be restored until purgeAfter.",
    )
    restore_media: Media = strawberry.mutation(
        resolver=retention_resolvers.restore_media,
        description="Bring deleted media back exactly as it was; CONFLICT once the window is over.",
    )
    delete_account: AccountDeletion = strawberry.mutation(
        resolver=account_resolvers.delete_account,
        description="All your media to the trash at once (purged after the retention window), and "
        "the likes you gave taken back.",
    )
    export_my_data: DataExport = strawberry.mutation(
        resolver=account_resolvers.export_my_data,
        description="A download URL for a JSON archive of your media metadata and links to your originals.",
    )
    exchange_token: SessionTokens = strawberry.mutation(
        resolver=session_resolvers.exchange_token,
        description="Sign in: trade an ID token of the identity provider for this service's access "
        "token and a refresh token.",
    )
    refresh_session: SessionTokens = strawberry.mutation(
        resolver=session_resolvers.refresh_session,
        description="A fresh access token and the next refresh token (each refresh token works once).",
    )
    revoke_session: bool = strawberry.mutation(
        resolver=session_resolvers.revoke_session,
        description="Sign out: the refresh token and every token of its session stop working.",
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

    @strawberry.subscription(
        description="Every state of one media you can see: at once an event for its current "
        "state (CREATED for PENDING, PROCESSING, COMPLETED, REJECTED, QUARANTINED), then each "
        "status change live, then the end after COMPLETED, REJECTED, QUARANTINED or DELETED. "
        "eventIds are mediaEvents' own: with `since`, this media's events after it, no gap, no "
        "duplicate (SINCE_EXPIRED as mediaEvents). NOT_FOUND for media you cannot see."
    )
    async def media_status(
        self, info: strawberry.Info, id: strawberry.ID, since: str | None = None
    ) -> AsyncGenerator[MediaEvent, None]:
        async for event in media_subscriptions.media_status(info, id, since):
            yield event


class MediagraphSchema(strawberry.Schema):
    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return LeanExtensionsRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_request_errors(errors, execution_context)


@functools.cache
@plain_resolvers.installed
def build_schema() -> strawberry.Schema:
    """The schema, built once per process (Strawberry's type registry is global)."""
    return MediagraphSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            # Factories: a fresh extension per operation (shared instances leak request state).
            # Observability before ErrorCodes: it must see the shaped errors on the way out.
            Observability,
            ErrorCodes,
            # Every root field charged, before validation (schema/rate_limits.py).
            RateLimits,
            # Parsing and validation: the token cap, the caches, the document limits before any
            # rule, the profile's rules, large documents off the event loop.
            lambda: DocumentPipeline(
                max_tokens=MAX_TOKENS, limits=_LIMITS, rules=RULES, production_rules=PRODUCTION_RULES
            ),
        ],
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALARS),
        execution_context_class=RequestErrorsExecutor,
    )
