"""RedisRefreshTokenStore: refresh-token families in Redis, rotated by one Lua script.

    {prefix}rt:{hash}   hash: family, user, roles ("," joined), spent (0/1)
    {prefix}rf:{family} set of the family's token hashes (to revoke them all)

A script runs alone on the server: of two refreshes of one token, the first marks it spent and
the second finds it spent, i.e. a reuse, and revokes the family. (Single Redis or one shard: the
family's keys are derived inside the script.)
"""

from __future__ import annotations

from redis.asyncio import Redis

from services.core.auth import Principal
from services.core.errors import Unauthenticated

_ROTATE = """
local prefix, new_hash, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local old = KEYS[1]
local family = redis.call('HGET', old, 'family')
if not family then return {'unknown'} end
local members = prefix .. 'rf:' .. family
if redis.call('HGET', old, 'spent') == '1' then
  for _, member in ipairs(redis.call('SMEMBERS', members)) do
    redis.call('DEL', prefix .. 'rt:' .. member)
  end
  redis.call('DEL', members)
  return {'reused'}
end
local user = redis.call('HGET', old, 'user')
local roles = redis.call('HGET', old, 'roles')
redis.call('HSET', old, 'spent', '1')
local new = prefix .. 'rt:' .. new_hash
redis.call('HSET', new, 'family', family, 'user', user, 'roles', roles, 'spent', '0')
redis.call('EXPIRE', new, ttl)
redis.call('SADD', members, new_hash)
redis.call('EXPIRE', members, ttl)
return {'ok', user, roles}
"""

_REVOKE = """
local prefix = ARGV[1]
local family = redis.call('HGET', KEYS[1], 'family')
if not family then return 0 end
local members = prefix .. 'rf:' .. family
for _, member in ipairs(redis.call('SMEMBERS', members)) do
  redis.call('DEL', prefix .. 'rt:' .. member)
end
redis.call('DEL', members)
return 1
"""


class RedisRefreshTokenStore:
    def __init__(self, redis: Redis, *, prefix: str, ttl_s: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._rotate = redis.register_script(_ROTATE)
        self._revoke = redis.register_script(_REVOKE)

    def _key(self, token_hash: str) -> str:
        return f"{self._prefix}rt:{token_hash}"

    async def open(self, family_id: str, token_hash: str, principal: Principal) -> None:
        key = self._key(token_hash)
        members = f"{self._prefix}rf:{family_id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "family": family_id,
                    "user": principal.user_id,
                    "roles": ",".join(sorted(principal.roles)),
                    "spent": "0",
                },
            )
            pipe.expire(key, self._ttl_s)
            pipe.sadd(members, token_hash)
            pipe.expire(members, self._ttl_s)
            await pipe.execute()

    async def rotate(self, token_hash: str, new_hash: str) -> Principal:
        result = await self._rotate(keys=[self._key(token_hash)], args=[self._prefix, new_hash, self._ttl_s])
        status = _text(result[0])
        if status == "reused":
            raise Unauthenticated(
                "refresh token reused: the session is revoked", reason="REFRESH_TOKEN_REUSED"
            )
        if status != "ok":
            raise Unauthenticated("invalid refresh token")
        roles = frozenset(role for role in _text(result[2]).split(",") if role)
        return Principal(user_id=_text(result[1]), roles=roles)

    async def revoke(self, token_hash: str) -> bool:
        return bool(await self._revoke(keys=[self._key(token_hash)], args=[self._prefix]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
