"""POST /dev/sign-in: a development token for a user name, so a browser app can sign in with no
identity provider.

It exists only when `mediagraph dev` builds the app on a loopback address (infra/roots/cli.py):
`mediagraph serve` never passes the flag, and no setting or profile can turn it on, so a
forgotten MEDIAGRAPH_PROFILE (which defaults to development) cannot open it. The token never
carries a role: an admin token still needs `mediagraph token --role admin` on the machine.
"""

from __future__ import annotations

import ipaddress
import json
import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.identity.jwt import MAX_SUBJECT_LENGTH, issue_dev_token
from infra.settings import TokenConfig

PATH = "/dev/sign-in"
TOKEN_TTL_S = 24 * 3600
# A user id as a token's subject may be (1..128 characters), limited to what reads well in
# logs and URLs: no spaces, no control characters.
_USER = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._@-]{{0,{MAX_SUBJECT_LENGTH - 1}}}")
_MAX_BODY = 1024


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bad(message: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT", "field": "user"}}]},
        status_code=400,
    )


def sign_in_route(tokens: TokenConfig, *, production: bool) -> Route:
    if production:
        raise RuntimeError("development sign-in is never offered by the production profile")

    async def sign_in(request: Request) -> Response:
        body = await request.body()
        try:
            payload = json.loads(body) if len(body) <= _MAX_BODY else None
        except ValueError:
            payload = None
        user = payload.get("user") if isinstance(payload, dict) else None
        if not isinstance(user, str):
            return _bad('send JSON {"user": "<name>"}')
        if not _USER.fullmatch(user):
            return _bad(
                f"user must be 1 to {MAX_SUBJECT_LENGTH} of A-Z a-z 0-9 . _ @ -, not starting with . _ @ -"
            )
        token = issue_dev_token(tokens, user, ttl_s=TOKEN_TTL_S)  # no roles, ever
        return JSONResponse(
            {"token": token, "user": user, "expiresIn": TOKEN_TTL_S}, headers={"Cache-Control": "no-store"}
        )

    return Route(PATH, sign_in, methods=["POST"])
