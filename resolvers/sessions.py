"""exchangeToken, refreshSession, revokeSession."""

from __future__ import annotations

from schema.types.context import Info
from schema.types.session import SessionTokens
from services.access.sessions import Sessions


def _sessions(info: Info) -> Sessions:
    return info.context.services.sessions


async def exchange_token(info: Info, id_token: str) -> SessionTokens:
    return SessionTokens.from_model(await _sessions(info).exchange(id_token))


async def refresh_session(info: Info, refresh_token: str) -> SessionTokens:
    return SessionTokens.from_model(await _sessions(info).refresh(refresh_token))


async def revoke_session(info: Info, refresh_token: str) -> bool:
    return await _sessions(info).revoke(refresh_token)
