"""Domain errors. Every error a client may see is one of these, with a stable code.

    MediagraphError                 code
    ├── Unauthenticated             UNAUTHENTICATED   no, expired or invalid token
    ├── Forbidden                   FORBIDDEN         authenticated, but not allowed
    ├── NotFound                    NOT_FOUND         absent, or not visible to the caller
    ├── BadUserInput                BAD_USER_INPUT    the request itself is wrong
    ├── Conflict                    CONFLICT          the state changed under the caller
    └── RateLimited                 RATE_LIMITED      slow down; retry_after seconds

Adapters translate SDK errors into these (`raise NotFound(...) from exc`); the schema layer maps
them onto `extensions.code`. Anything else is a bug and is masked for clients.
"""

from __future__ import annotations

import math


class MediagraphError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: object) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class Unauthenticated(MediagraphError):
    code = "UNAUTHENTICATED"


class Forbidden(MediagraphError):
    code = "FORBIDDEN"


class NotFound(MediagraphError):
    code = "NOT_FOUND"


class BadUserInput(MediagraphError):
    code = "BAD_USER_INPUT"


class Conflict(MediagraphError):
    code = "CONFLICT"


class RateLimited(MediagraphError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        # Rounded up: a client that waits exactly this long finds the tokens there.
        super().__init__(message, retryAfter=max(1, math.ceil(retry_after)))
