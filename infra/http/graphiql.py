"""GraphiQL that works with no internet: its page and its assets, all from this server.

The JS and CSS are vendored in infra/http/static/graphiql/ (pinned versions, VERSIONS.json says which
and how they were fetched; the image has no Node, so the files are committed and packaged). The
page references each with its SRI hash, and its Content-Security-Policy allows scripts from this
server only: the start-up code is a file too, its settings a JSON block (data, not script).
`style-src` also allows inline styles: GraphiQL's dialogs inject a <style> element (react-remove-
scroll) and offer no nonce. No 'unsafe-eval': the one `new Function` in the bundle is a globalThis
fallback that modern browsers never reach.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).parent / "static" / "graphiql"
PREFIX = "/graphiql/"
# Load order matters: React, then ReactDOM, GraphiQL (uses both), the explorer plugin, ours.
SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "plugin-explorer.umd.js",
    "mediagraph-graphiql.js",
)
STYLES = ("graphiql.min.css", "plugin-explorer.css", "mediagraph-graphiql.css")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

EXAMPLE_QUERY = """\
# mediagraph GraphiQL. Run with the play button or Ctrl-Enter.
#
# Your token goes in the Headers tab below: {"Authorization": "Bearer <token>"}
# (`mediagraph dev` fills one in for alice; more: mediagraph token --user bob).
# Subscriptions (mediaStatus, mediaEvents) use the same header.
# The schema is in the Docs panel (book icon); the explorer builds queries by clicking.

query MyMedia {
  myMedia(first: 10) {
    edges {
      node { id mediaId status filename createdAt url }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
PLACEHOLDER_HEADERS = '{\n  "Authorization": "Bearer <a token: mediagraph token --user alice>"\n}'
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


@functools.cache
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@functools.cache
def integrity() -> dict[str, str]:
    """Each asset's SRI hash: the pinned one for vendored files (VERSIONS.json), so a file changed
    on disk fails in the browser; computed for our own two files."""
    pinned: dict[str, Any] = json.loads(_asset("VERSIONS.json"))["files"]
    return {
        name: pinned[name]["sha384"] if name in pinned else sri(_asset(name)) for name in (*SCRIPTS, *STYLES)
    }


def content_security_policy(host: str | None) -> str:
    # 'self' covers ws: to the same host in CSP3; older engines need it spelled out.
    sockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data:; font-src 'self' data:; connect-src 'self'{sockets}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def page(request: Request, token: Callable[[], str] | None) -> Response:
    headers = json.dumps({"Authorization": f"Bearer {token()}"}, indent=2) if token else PLACEHOLDER_HEADERS
    # Data for the start-up script; "<" escaped so nothing in it can end the <script> element.
    config = json.dumps({"query": EXAMPLE_QUERY, "headers": headers}).replace("<", "\\u003c")
    hashes = integrity()
    styles = "\n".join(
        f'    <link rel="stylesheet" href="graphiql/{name}" integrity="{hashes[name]}">' for name in STYLES
    )
    scripts = "\n".join(
        f'    <script src="graphiql/{name}" integrity="{hashes[name]}"></script>' for name in SCRIPTS
    )
    html = f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>mediagraph GraphiQL</title>
    <link rel="icon" href="data:,">
{styles}
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL… (if this stays, the browser console says why)</div>
    <script id="graphiql-config" type="application/json">{config}</script>
{scripts}
  </body>
</html>
"""
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": content_security_policy(request.headers.get("host")),
            "Cache-Control": "no-store",  # it may carry a development token
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


async def _serve_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in (*SCRIPTS, *STYLES):  # a fixed list: no path from the URL reaches the disk
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(
        _asset(name),
        media_type=_TYPES[Path(name).suffix],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def asset_route() -> Route:
    return Route(PREFIX + "{name}", _serve_asset, methods=["GET", "HEAD"])
