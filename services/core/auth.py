"""Who is calling: the principal behind a verified token."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.core.errors import Unauthenticated


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    roles: frozenset[str] = frozenset()
    # When the token behind this principal expires (epoch seconds); a WebSocket opened with it
    # closes then. Not part of identity: two tokens of one user are the same principal.
    expires_at: float | None = field(default=None, compare=False, repr=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def require(principal: Principal | None) -> Principal:
    """The principal, or Unauthenticated when the call carries no valid token."""
    if principal is None:
        raise Unauthenticated("a valid bearer token is required")
    return principal
