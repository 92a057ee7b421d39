"""The payload of exchangeToken and refreshSession."""

from __future__ import annotations

from typing import Self

import strawberry

from services.access.sessions import SessionTokens as SessionTokensModel


@strawberry.type(description="A short-lived access token and the refresh token that renews it.")
class SessionTokens:
    access_token: str = strawberry.field(description="Bearer token for the API (ES256, this service's key).")
    expires_in: int = strawberry.field(description="Seconds the access token is valid.")
    refresh_token: str = strawberry.field(
        description="Works once: refreshSession returns the next one. Presenting a spent one "
        "again revokes the whole session."
    )

    @classmethod
    def from_model(cls, model: SessionTokensModel) -> Self:
        return cls(
            access_token=model.access_token, expires_in=model.expires_in, refresh_token=model.refresh_token
        )
