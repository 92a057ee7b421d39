"""Document workers: the parsing and validation of documents the caches do not know, in a pool of
worker processes, so that no request holds the event loop for them (schema/documents.py).

Each worker builds the schema once (spawned, not forked: the API process has threads) and, per
document, parses it (token cap), measures it (schema/document_guard.py), runs the validation
rules, measures each operation's rate-limit cost, and shapes the errors as the event loop would
(schema/extensions.shape_error: BAD_USER_INPUT, suggestions hidden in production), at most
MAX_ERRORS of them. What comes back is small: a refused document's error dicts and the outline
of its operations, or an accepted document pickled.

A worker that dies (killed, out of memory) breaks the pool: the requests it was examining are
answered at once with INTERNAL_SERVER_ERROR, extensions.reason DOCUMENT_WORKERS_UNAVAILABLE (the
code clients retry with backoff: docs/api.md), a new pool replaces the broken one, and the
requests sent after that go to the new pool. A document that does not come back within
EXAMINE_TIMEOUT_S is answered the same way (the work is linear and bounded by the token cap: it
takes milliseconds; a timeout means the pool is swamped, and waiting longer would not help).

MEDIAGRAPH_DOCUMENT_WORKERS sets the number of processes (the production profile: two, or one
on a single core; development and tests: none, the work stays in the API process).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import pickle
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from graphql import ASTValidationRule, GraphQLError, GraphQLSchema, OperationDefinitionNode, parse

from schema.document_guard import DocumentLimits
from schema.documents import DocumentsUnavailable, Examined, capped, validate
from schema.extensions import shape_error
from schema.limits import MAX_TOKENS, document_limits
from schema.rate_limits import operation_cost
from schema.root import build_schema
from services.core.pagination import MAX_PAGE_SIZE

log = logging.getLogger("mediagraph.documents")

EXAMINE_TIMEOUT_S = 10.0

_Rules = tuple[type[ASTValidationRule], ...]


def examine(
    schema: GraphQLSchema,
    query: str,
    rules: _Rules,
    limits: DocumentLimits,
    max_tokens: int,
    *,
    production: bool,
    request_id: str = "-",
) -> Examined:
    """Parse, measure and validate one document; what the event loop needs of the outcome."""
    try:
        document = parse(query, max_tokens=max_tokens)
    except GraphQLError as syntax_error:
        return Examined((_shaped(syntax_error, request_id, production),), syntax=True)
    operations = [
        definition for definition in document.definitions if isinstance(definition, OperationDefinitionNode)
    ]
    outline = tuple(
        (operation.operation.value, operation.name.value if operation.name else None)
        for operation in operations
    )
    # Each operation's cost: the one charged is the one the request names (else the first).
    costs = tuple(operation_cost(document, name) for _, name in outline)
    errors = validate(schema, document, rules, limits)
    if errors:
        shaped = tuple(_shaped(error, request_id, production) for error in capped(errors))
        return Examined(shaped, operations=outline, costs=costs)
    return Examined((), operations=outline, costs=costs, document=pickle.dumps(document, protocol=5))


def _shaped(error: GraphQLError, request_id: str, production: bool) -> dict[str, Any]:
    return dict(shape_error(error, request_id, hide_suggestions=production).formatted)


# In a worker process: the schema's graphql-core form and the shipped limits, built once.
_schema: GraphQLSchema | None = None
_LIMITS = document_limits(MAX_PAGE_SIZE)


def _start_worker() -> None:
    global _schema  # once per worker process
    _schema = build_schema()._schema
    # Everything built so far lives as long as the worker: keep it out of the cyclic GC.
    gc.freeze()


def _examine_here(query: str, rules: _Rules, production: bool, request_id: str) -> Examined:
    assert _schema is not None, "the worker's initializer builds the schema"
    return examine(_schema, query, rules, _LIMITS, MAX_TOKENS, production=production, request_id=request_id)


def _pid() -> int:
    return os.getpid()


class DocumentWorkers:
    """The pool of one API process (started and closed by its lifespan: infra/roots/app.py)."""

    def __init__(self, processes: int, *, timeout_s: float = EXAMINE_TIMEOUT_S) -> None:
        if processes < 1:
            raise ValueError("at least one document worker")
        self.processes = processes
        self.timeout_s = timeout_s
        self.replaced = 0  # pools replaced after a worker died
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker
        )

    async def start(self) -> None:
        """Start the processes and wait until each has built its schema (a second or two)."""
        self._pool = self._new_pool()
        await self.pids()

    async def pids(self) -> set[int]:
        """The process ids of the workers that answer (tests kill one)."""
        pool = self._pool
        if pool is None:
            raise DocumentsUnavailable("the document workers are not started")
        answers = [asyncio.wrap_future(pool.submit(_pid)) for _ in range(self.processes)]
        return set(await asyncio.gather(*answers))

    async def examine(
        self, query: str, rules: _Rules, *, production: bool, request_id: str = "-"
    ) -> Examined:
        for _ in range(2):
            pool = self._pool
            if pool is None:
                raise DocumentsUnavailable("the document workers are not started")
            try:
                future: Future[Examined] = pool.submit(_examine_here, query, rules, production, request_id)
            except BrokenProcessPool:
                # Broken before this document was sent: the new pool takes it.
                self._replace(pool)
                continue
            except RuntimeError as exc:  # shut down
                raise DocumentsUnavailable("the document workers are stopping") from exc
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
            except BrokenProcessPool as exc:
                # A worker died while this document was in the pool (perhaps because of it: it is
                # not sent again).
                self._replace(pool)
                raise DocumentsUnavailable("a document worker died") from exc
            except TimeoutError as exc:
                future.cancel()
                log.warning("document examination timed out", extra={"timeout_s": self.timeout_s})
                raise DocumentsUnavailable("the document workers are swamped") from exc
        raise DocumentsUnavailable("the document workers keep failing")

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is not broken:
            return  # another request replaced it already
        log.warning("a document worker died: the pool is replaced")
        self._pool = self._new_pool()
        self.replaced += 1
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
