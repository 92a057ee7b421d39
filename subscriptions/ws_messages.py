"""graphql-transport-ws messages checked before Strawberry reads them: it assumes a JSON object
with the right fields, and fails on anything else by dropping the socket without a close frame.
A message that is not a JSON object with a string `type`, or a `subscribe` / `complete` whose
`id` or payload has the wrong shape, closes the socket with 4400 and a reason, before or after
`connection_init` (GuardedTransportWSHandler, subscriptions/ws_guard.py). JSON that cannot be
read at all is closed 4400 by Strawberry, with the view's decoder (infra/http/wire.py)."""

from __future__ import annotations

_PAYLOAD_FIELDS = {"variables": dict, "operationName": str, "extensions": dict}
_TYPE_NAMES = {str: "a string", dict: "an object"}
MAX_ID_CHARS = 100


def ws_message_problem(message: object) -> str | None:
    """What is wrong with a decoded graphql-transport-ws message (a close reason, < 123 bytes),
    or None to let the protocol handle it."""
    if not isinstance(message, dict):
        return "Messages must be JSON objects"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "Message type must be a string"
    if kind in ("subscribe", "complete"):
        id_ = message.get("id")
        if not isinstance(id_, str) or not id_ or len(id_) > MAX_ID_CHARS:
            return "Message id must be a string of 1 to 100 characters"
    if kind == "subscribe":
        payload = message.get("payload")
        if not isinstance(payload, dict):
            return "Subscribe payload must be an object"
        if not isinstance(payload.get("query"), str):
            return "Subscribe payload query must be a string"
        for name, expected in _PAYLOAD_FIELDS.items():
            value = payload.get(name)
            if value is not None and not isinstance(value, expected):
                return f"Subscribe payload {name} must be {_TYPE_NAMES[expected]} or null"
    return None
