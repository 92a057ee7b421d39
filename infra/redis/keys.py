"""Every Redis key and channel name of the service, built in one place.

A Redis Cluster stores a key in one of 16,384 hash slots, and a Lua script, a MULTI/EXEC
transaction or a RENAME may only touch keys of one slot. The slot of a key is that of its hash
tag, the part between the first `{` and the next `}`; so the keys that one script touches carry
the same tag, and keys that are never used together carry different ones, which spreads them
over the cluster:

    {u:<user>}       a user's events: pub/sub channel, stream, trim marker, epoch, publish
                     markers
    {pc:<scope>}     a listing scope's page cache: its generation and its pages
    {o:<owner>}      an owner's URL cache: its generation and its URLs
    {v:<bucket>}     views, in 16 buckets by media id: per-viewer markers, the view log, and
                     the bucket's pending counts (taken all at once by RENAME)
    {sf:<family>}    a refresh-token family: its tokens, their state, the principal
    {bus}            the bus's control channel

Keys read or written alone (a rate-limit bucket, a refresh-token pointer, a feed snapshot) need
no tag: the cluster spreads them by their whole name. One more such key is built elsewhere: a
notifier's delivery marker, `<prefix>notified:<notifier>:<event>` (infra/media/notifications.py;
the import contract keeps the adapters of infra independent of each other).

The prefix (MEDIAGRAPH_REDIS_PREFIX) comes first and must hold no brace, or every key would
share the prefix's slot. The same names are used on a single Redis, where tags mean nothing.
"""

from __future__ import annotations

import zlib

VIEW_BUCKETS = 16


class RedisKeys:
    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the Redis key prefix must not contain '{' or '}' (hash tags)")
        self.prefix = prefix

    # --- events (infra/redis/bus.py): one slot per user ---

    def events_channel(self, user_id: str) -> str:
        return f"{self.prefix}{{u:{user_id}}}:events"

    def user_of_channel(self, channel: str) -> str | None:
        """The user whose events channel this is; None for any other channel."""
        start = f"{self.prefix}{{u:"
        end = "}:events"
        if not (channel.startswith(start) and channel.endswith(end)):
            return None
        return channel[len(start) : -len(end)]

    def event_stream(self, user_id: str) -> str:
        return f"{self.prefix}{{u:{user_id}}}:stream"

    def event_trimmed(self, user_id: str) -> str:
        return f"{self.prefix}{{u:{user_id}}}:trimmed"

    def event_epoch(self, user_id: str) -> str:
        return f"{self.prefix}{{u:{user_id}}}:epoch"

    def event_published(self, user_id: str, dedupe_key: str) -> str:
        return f"{self.prefix}{{u:{user_id}}}:published:{dedupe_key}"

    def bus_control(self) -> str:
        return f"{self.prefix}{{bus}}:control"

    # --- listing pages (infra/redis/page_cache.py): one slot per scope ---

    def page_generation(self, scope: str) -> str:
        return f"{self.prefix}{{pc:{scope}}}:gen"

    def page_prefix(self, scope: str) -> str:
        """Pages are `<page_prefix><generation>:<digest>`, in the generation's slot."""
        return f"{self.prefix}{{pc:{scope}}}:page:"

    # --- signed URLs (infra/redis/delivery.py): one slot per owner ---

    def url_generation(self, owner_id: str) -> str:
        return f"{self.prefix}{{o:{owner_id}}}:urlgen"

    def url(self, owner_id: str, generation: str, key: str) -> str:
        return f"{self.prefix}{{o:{owner_id}}}:url:{generation}:{key}"

    # --- views (infra/redis/delivery.py): 16 buckets by media ---

    @staticmethod
    def view_bucket(media_id: str) -> int:
        return zlib.crc32(media_id.encode()) % VIEW_BUCKETS

    def viewed(self, media_id: str, viewer_id: str) -> str:
        return f"{self.prefix}{{v:{self.view_bucket(media_id)}}}:viewed:{media_id}:{viewer_id}"

    def view_log(self, media_id: str) -> str:
        return f"{self.prefix}{{v:{self.view_bucket(media_id)}}}:viewlog:{media_id}"

    def views_pending(self, bucket: int) -> str:
        return f"{self.prefix}{{v:{bucket}}}:pending"

    def views_flushing(self, bucket: int) -> str:
        return f"{self.prefix}{{v:{bucket}}}:flushing"

    # --- sessions (infra/redis/sessions.py): one slot per refresh-token family ---

    def refresh_token(self, token_hash: str) -> str:
        """A pointer from a token's hash to its family (written before the token is valid)."""
        return f"{self.prefix}session:rt:{token_hash}"

    def session_family(self, family_id: str) -> str:
        return f"{self.prefix}session:{{sf:{family_id}}}"

    # --- single keys: no tag ---

    def rate_bucket(self, bucket: str) -> str:
        return f"{self.prefix}rl:{bucket}"

    def feed_snapshot(self, snapshot_id: str) -> str:
        return f"{self.prefix}feed:{snapshot_id}"
