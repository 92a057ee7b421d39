"""The embedded AWS stand-in for `make dev` and tests: moto in server mode on 127.0.0.1, so
the production aioboto3 code talks real HTTP to it, unchanged."""

from __future__ import annotations

import copy
import importlib.metadata
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb import models as moto_dynamodb
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

log = logging.getLogger("mediagraph.embedded")

# The fence around moto's internals: `_EmbeddedMotoServer` replaces ThreadedMotoServer's private
# `_server_entry` and sets the private attributes it sets (`_server`, `_server_ready_event`).
# Done only on the moto series the suite ran on (pyproject.toml admits only these); on another,
# the plain ThreadedMotoServer runs, without the DynamoDB lock: concurrent transactions against one
# table may then fail with moto's HTTP 500 (a stand-in's limit; real DynamoDB is unaffected).
# The same fence covers `_copy_each_table_once` (moto's DynamoDB module's `copy`, and its
# TransactWriteItems copying before it applies); on another series moto's own runs, only slower.
TESTED_MOTO = ("5.2",)
_PRIVATE = ("_server_entry", "_server_ready_event", "_ip_address", "_port", "_server")


# moto's TransactWriteItems snapshots a table (copy.deepcopy, to roll back) once per element of
# the transaction that names it, all before it applies anything: a transaction of n items on one
# table copies the whole table n times, and only one copy is ever used. The cost of a transaction
# then grows with (items x table size), which real DynamoDB's does not (it is per item), and
# which made every extra transaction item (the outbox's, a tag's) look like a whole extra copy
# of the table. Within one transaction each table is copied once here: the copies are identical
# (none is taken after a change), so the rollback is unchanged.
_TRANSACTION = threading.local()


class _CopyEachTableOnce:
    """moto's DynamoDB backend's `copy` module: a table deep-copied again within the same
    TransactWriteItems gets the copy already taken; everything else is the real `copy`."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, obj: Any, memo: dict[int, Any] | None = None) -> Any:
        taken: dict[int, tuple[Any, Any]] | None = getattr(_TRANSACTION, "tables", None)
        if taken is None or not isinstance(obj, Table):
            return copy.deepcopy(obj, memo)
        if id(obj) not in taken:  # the original is held too, so its id cannot be reused meanwhile
            taken[id(obj)] = (obj, copy.deepcopy(obj, memo))
        return taken[id(obj)][1]


def _copy_each_table_once() -> None:
    backend = moto_dynamodb.DynamoDBBackend
    transact = backend.transact_write_items
    if getattr(transact, "copies_each_table_once", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        _TRANSACTION.tables = {}
        try:
            transact(self, transact_items)
        finally:
            _TRANSACTION.tables = None

    transact_write_items.copies_each_table_once = True  # type: ignore[attr-defined]
    setattr(moto_dynamodb, "copy", _CopyEachTableOnce())  # noqa: B010 (a module, not typed for it)
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def moto_fits(version: str | None = None) -> bool:
    """Whether `version` (default: the installed moto) is one the override was tested with, and
    ThreadedMotoServer still has what it overrides."""
    version = version or importlib.metadata.version("moto")
    if ".".join(version.split(".")[:2]) not in TESTED_MOTO:
        return False
    probe = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    return (
        all(hasattr(probe, name) for name in _PRIVATE)
        and callable(probe._server_entry)
        and isinstance(getattr(moto_dynamodb, "copy", None), copy.__class__ | _CopyEachTableOnce)
        and callable(getattr(moto_dynamodb.DynamoDBBackend, "transact_write_items", None))
    )


MOTO_FITS = moto_fits()

# moto's DynamoDB is not thread-safe: concurrent TransactWriteItems against one table fail with
# "dictionary changed size during iteration" (HTTP 500). Real DynamoDB serialises per item, so
# the stand-in serialises DynamoDB calls; S3 and SQS (long polls!) stay concurrent.
_DYNAMODB_LOCK = threading.Lock()


def _serialise_dynamodb(app: Any) -> Any:
    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _DYNAMODB_LOCK:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


class _EmbeddedMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        app = _serialise_dynamodb(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def moto_server(port: int | None = None) -> Iterator[str]:
    """Run moto on 127.0.0.1 (never 0.0.0.0) and yield its endpoint URL."""
    # moto needs credentials in the environment; fake ones can never reach real AWS.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per moto request otherwise
    if MOTO_FITS:
        _copy_each_table_once()
        server: ThreadedMotoServer = _EmbeddedMotoServer(
            ip_address="127.0.0.1", port=port or free_port(), verbose=False
        )
    else:
        log.warning(
            "moto %s is not a version the embedded server was tested with (%s): DynamoDB calls "
            "are not serialised",
            importlib.metadata.version("moto"),
            ", ".join(TESTED_MOTO),
        )
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port or free_port(), verbose=False)
    server.start()
    host, bound_port = server.get_host_and_port()
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.stop()
