"""RedisRefreshTokenStore: refresh-token families in Redis, rotated by one Lua script.

    {prefix}session:{sf:<family>}   hash: user, roles ("," joined), and t:<token hash> = 0 (live)
                                    or 1 (spent), for every token the family ever had
    {prefix}session:rt:<hash>       the family of a token (a pointer, written before the token
                                    becomes valid)

Everything that must change together lives in the family's one key, so a rotation is one script
on one key: of two refreshes of one token, the first marks it spent and the second finds it
spent, i.e. a reuse, and revokes the family. That holds on a Redis Cluster too: the family key
is the script's only key, and the pointers, read before the script, never change. A pointer
without a family entry (its successor was never made valid, or the family was revoked) is an
unknown token.
"""

from __future__ import annotations

from infra.redis.client import RedisClient
from infra.redis.keys import RedisKeys
from services.core.auth import Principal
from services.core.errors import Unauthenticated

_OPEN = """
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'roles', ARGV[2], 't:' .. ARGV[3], '0')
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

_ROTATE = """
local old, new, ttl = 't:' .. ARGV[1], 't:' .. ARGV[2], tonumber(ARGV[3])
local state = redis.call('HGET', KEYS[1], old)
if not state then return {'unknown'} end
if state == '1' then
  redis.call('DEL', KEYS[1])
  return {'reused'}
end
redis.call('HSET', KEYS[1], old, '1', new, '0')
redis.call('EXPIRE', KEYS[1], ttl)
return {'ok', redis.call('HGET', KEYS[1], 'user'), redis.call('HGET', KEYS[1], 'roles')}
"""


class RedisRefreshTokenStore:
    def __init__(self, redis: RedisClient, *, prefix: str, ttl_s: int) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._ttl_s = ttl_s
        self._open = redis.register_script(_OPEN)
        self._rotate = redis.register_script(_ROTATE)

    async def open(self, family_id: str, token_hash: str, principal: Principal) -> None:
        await self._redis.set(self._keys.refresh_token(token_hash), family_id, ex=self._ttl_s)
        roles = ",".join(sorted(principal.roles))
        await self._open(
            keys=[self._keys.session_family(family_id)],
            args=[principal.user_id, roles, token_hash, self._ttl_s],
        )

    async def rotate(self, token_hash: str, new_hash: str) -> Principal:
        family = await self._redis.get(self._keys.refresh_token(token_hash))
        if family is None:
            raise Unauthenticated("invalid refresh token")
        family_id = _text(family)
        await self._redis.set(self._keys.refresh_token(new_hash), family_id, ex=self._ttl_s)
        result = await self._rotate(
            keys=[self._keys.session_family(family_id)], args=[token_hash, new_hash, self._ttl_s]
        )
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
        family = await self._redis.get(self._keys.refresh_token(token_hash))
        if family is None:
            return False
        return bool(await self._redis.delete(self._keys.session_family(_text(family))))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
