"""The WebSocket protocol the API runs under uvicorn, and the fence around uvicorn's internals.

The protocol itself (infra/http/uvicorn_ws.py) is uvicorn's websockets-sansio protocol made
cheaper per idle connection, with keepalive pings from one sweep, a write-now extension for the
shared fan-out (SEND_TEXT_NOW) and a stall timeout for clients that stop reading. It overrides
hooks and replaces attributes that are uvicorn's internals, not its API: such code breaks
silently when uvicorn changes them (keepalive pings that never run). So it is used only on the
uvicorn versions the test suite ran on, checked here at import; on any other version the server
runs uvicorn's own protocol, unchanged (the public `ws="websockets-sansio"` setting), and says so
in the log: subscriptions work as before, at uvicorn's cost per connection, without SEND_TEXT_NOW
(the fan-out then awaits each send) and without the stall timeout (uvicorn's own send backpressure
applies). tests/integration/test_ws_server_protocol.py runs a server both ways.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging

log = logging.getLogger("mediagraph.websocket")

# The uvicorn series (major.minor) the whole suite ran on; pyproject.toml admits only these.
TESTED_UVICORN = ("0.54",)
PUBLIC_PROTOCOL = "websockets-sansio"
_INTERNAL_MODULE = "uvicorn.protocols.websockets.websockets_sansio_impl"
_HOOKS = (
    "start_keepalive",
    "stop_keepalive",
    "handle_pong",
    "handle_connect",
    "keepalive_timeout",
    "pause_writing",
    "resume_writing",
    "connection_lost",
)

# The ASGI extension the protocol offers (subscriptions/fanout.py names it too: an adapter does
# not import the GraphQL layer; a test keeps the two names equal):
# scope["extensions"][SEND_TEXT_NOW](utf8) -> True once the frame is written, False while the
# socket's buffer is full; raises ClientDisconnected once the socket is closed.
SEND_TEXT_NOW = "mediagraph.websocket.send_text_now"


def text_frame_header(length: int) -> bytes:
    """A server's unfragmented, unmasked text frame header (RFC 6455 5.2)."""
    if length < 126:
        return bytes((0x81, length))
    if length < 1 << 16:
        return b"\x81\x7e" + length.to_bytes(2, "big")
    return b"\x81\x7f" + length.to_bytes(8, "big")


def uvicorn_fits(version: str | None = None) -> bool:
    """Whether `version` (default: the installed uvicorn) is one the protocol was tested with, and
    the installed uvicorn still has the module and hooks it overrides."""
    version = version or importlib.metadata.version("uvicorn")
    if ".".join(version.split(".")[:2]) not in TESTED_UVICORN:
        return False
    try:
        module = importlib.import_module(_INTERNAL_MODULE)
    except ImportError:
        return False
    protocol = getattr(module, "WebSocketsSansIOProtocol", None)
    return protocol is not None and all(callable(getattr(protocol, hook, None)) for hook in _HOOKS)


UVICORN_FITS = uvicorn_fits()


def websocket_protocol(send_timeout_s: float) -> type | str:
    """The value for uvicorn's `ws` setting: our protocol class, with this deployment's stall
    timeout, on a tested uvicorn; uvicorn's own protocol by name otherwise."""
    if not UVICORN_FITS:
        log.warning(
            "uvicorn %s is not a version the WebSocket protocol was tested with (%s): running "
            "uvicorn's own protocol (no shared write-now, no stall timeout)",
            importlib.metadata.version("uvicorn"),
            ", ".join(TESTED_UVICORN),
        )
        return PUBLIC_PROTOCOL
    from infra.http.uvicorn_ws import MediagraphWebSocketProtocol

    return type(
        "MediagraphWebSocketProtocol", (MediagraphWebSocketProtocol,), {"send_timeout_s": send_timeout_s}
    )
