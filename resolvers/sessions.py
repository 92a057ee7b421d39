"""exchangeToken, refreshSession, revokeSession."""

from __future__ import annotations

from schema.types.context import Info
from schema.types.session import SessionTokens
from services.access.sessions import SessionService
from services.core.errors import BadUserInput


def _sessions(info: Info) -> SessionService:
    service = info.context.services.sessions
    if service is None:
        raise BadUserInput("sessions are not configured on this server", reason="SESSIONS_DISABLED")
    return service


async def exchange_token(info: Info, id_token: str) -> SessionTokens:
    return SessionTokens.from_model(await _sessions(info).exchange(id_token))


async def refresh_session(info: Info, refresh_token: str) -> SessionTokens:
    return SessionTokens.from_model(await _sessions(info).refresh(refresh_token))


async def revoke_session(info: Info, refresh_token: str) -> bool:
    return await _sessions(info).revoke(refresh_token)
