"""Document workers: the parsing and validation of documents the caches do not know, in a pool of
worker processes, so that no request holds the event loop for them (schema/documents.py).

Each worker builds the schema once (spawned, not forked: the API process has threads) and, per
document, parses it (token cap), measures it (schema/document_guard.py), runs the validation
rules, measures each operation's rate-limit cost, and shapes the errors as the event loop would
(schema/extensions.shape_error: BAD_USER_INPUT, suggestions hidden in production), at most
MAX_ERRORS of them. What comes back is small: a refused document's error dicts and the outline
of its operations, or an accepted document pickled.

A worker that dies (killed, out of memory) costs only the document it was examining: that
request is answered at once with INTERNAL_SERVER_ERROR, extensions.reason
DOCUMENT_WORKERS_UNAVAILABLE (the code clients retry with backoff: docs/api.md), and a new worker
is started in its place in the background while the others go on. A worker that has not answered
within EXAMINE_TIMEOUT_S is killed and replaced the same way (the work is linear and bounded by
the token cap: it takes milliseconds); a document that finds no worker free for as long is
answered the same way, and no worker is killed.

MEDIAGRAPH_DOCUMENT_WORKERS sets the number of processes (the production profile: two, or one
on a single core; development and tests: none, the work stays in the API process).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import pickle
import socket
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
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
START_TIMEOUT_S = 60.0  # a worker imports the application and builds the schema

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
_HEAD = 4  # each message: its length (4 bytes, big-endian), then a pickle


# How a worker yields the CPU to the API process (MEDIAGRAPH_DOCUMENT_WORKER_POLICY): the Linux
# scheduling policy it runs under.
POLICIES = {"idle": "SCHED_IDLE", "batch": "SCHED_BATCH"}


def _start_worker(nice: int, policy: str = "idle") -> None:
    global _schema  # once per worker process
    # "idle" (the default; Linux SCHED_IDLE): a worker runs on CPU time no other process wants.
    # Any process that wakes up preempts it at once, and the kernel places a woken process on a
    # core running only such work as on a free one. Measured (perf sched, docs/benchmarks.md):
    # as SCHED_BATCH at nice 10 a worker held a core for up to 27 ms while the API process, woken
    # by a request, waited behind it for up to 5.4 ms, though the other core was idle; as
    # SCHED_IDLE, never. Under a load that leaves no CPU time free, a worker still gets a small
    # share (weight 3 against 1,024), so a document the caches do not know waits rather than
    # delays every request; past EXAMINE_TIMEOUT_S it is answered DOCUMENT_WORKERS_UNAVAILABLE.
    # "batch" (SCHED_BATCH): a worker woken by a document does not preempt the API process, but
    # one running keeps its core until the scheduler's tick.
    name = POLICIES.get(policy)
    if name is not None and hasattr(os, "sched_setscheduler") and hasattr(os, name):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, getattr(os, name), os.sched_param(0))
    # Lower priority than the API process (Unix niceness), whatever the policy: Linux ignores it
    # for SCHED_IDLE, and under "batch" (or where the policies above do not exist) it is what lets
    # the event loop that serves every request go first when both want a core. Unloaded, a
    # worker runs at full speed.
    if nice and hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(nice)
    _schema = build_schema()._schema
    # Everything built so far lives as long as the worker: keep it out of the cyclic GC.
    gc.freeze()


def _examine_here(query: str, rules: _Rules, production: bool, request_id: str) -> Examined:
    assert _schema is not None, "the worker builds the schema first"
    return examine(_schema, query, rules, _LIMITS, MAX_TOKENS, production=production, request_id=request_id)


def _serve(connection: socket.socket, nice: int = 0, policy: str = "idle") -> None:
    """A worker process: build the schema, say so, then answer one document at a time."""
    _start_worker(nice, policy)
    with connection, connection.makefile("rb") as incoming:
        connection.sendall(_frame(b"ready"))
        while True:
            head = incoming.read(_HEAD)
            if len(head) < _HEAD:
                return  # the API process closed the connection: stop
            query, packed, production, request_id = pickle.loads(incoming.read(int.from_bytes(head, "big")))  # noqa: S301  # from our own API process
            rules = _rules_from(packed)
            try:
                reply: tuple[bool, object] = (True, _examine_here(query, rules, production, request_id))
            except Exception as exc:  # a bug: the API process raises it there
                reply = (False, f"{type(exc).__name__}: {exc}")
            connection.sendall(_frame(pickle.dumps(reply, protocol=5)))


# A profile's rules are always the same tuple of classes, and pickling ~30 class references costs
# ~65 µs each way: each side keeps them packed once (the API process per tuple, a worker per bytes).
_KEPT_RULE_SETS = 8  # two profiles; a bound all the same
_packed_rules: dict[_Rules, bytes] = {}
_unpacked_rules: dict[bytes, _Rules] = {}


def _packed(rules: _Rules) -> bytes:
    packed = _packed_rules.get(rules)
    if packed is None:
        packed = pickle.dumps(rules, protocol=5)
        if len(_packed_rules) < _KEPT_RULE_SETS:
            _packed_rules[rules] = packed
    return packed


def _rules_from(packed: bytes) -> _Rules:
    rules = _unpacked_rules.get(packed)
    if rules is None:
        rules = pickle.loads(packed)  # noqa: S301  # from our own API process
        if len(_unpacked_rules) < _KEPT_RULE_SETS:
            _unpacked_rules[packed] = rules
    return rules


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(_HEAD, "big") + payload


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(_HEAD)
    return await reader.readexactly(int.from_bytes(head, "big"))


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def stop(self) -> None:
        self.writer.close()
        if self.process.is_alive():
            self.process.kill()


class DocumentWorkers:
    """The worker processes of one API process (started and closed by its lifespan:
    infra/roots/app.py).

    Each worker is a spawned process joined to the API process by a socket pair that the event
    loop reads and writes like any other connection: no helper thread in the API process (a
    thread would take the GIL from the loop at every hand-over, as concurrent.futures'
    process pool does), and each worker can be replaced on its own. A document goes to an idle
    worker (or waits for one) and comes back as an `Examined`."""

    def __init__(
        self, processes: int, *, timeout_s: float = EXAMINE_TIMEOUT_S, nice: int = 0, policy: str = "idle"
    ) -> None:
        if processes < 1:
            raise ValueError("at least one document worker")
        if policy not in POLICIES:
            raise ValueError(f"policy: one of {', '.join(POLICIES)}")
        self.processes = processes
        self.timeout_s = timeout_s
        self.nice = nice  # added to each worker's niceness (MEDIAGRAPH_DOCUMENT_WORKER_NICE)
        self.policy = policy  # MEDIAGRAPH_DOCUMENT_WORKER_POLICY
        self.replaced = 0  # workers replaced after one died or timed out
        self._workers: set[_Worker] = set()
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False

    async def start(self) -> None:
        """Start the processes and wait until each has built its schema (a second or two)."""
        self._started = True
        workers = await asyncio.gather(*(self._spawn() for _ in range(self.processes)))
        for worker in workers:
            self._idle.put_nowait(worker)

    async def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(theirs, self.nice, self.policy), name="mediagraph-documents", daemon=True
        )
        try:
            process.start()
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        worker = _Worker(process, reader, writer)
        self._workers.add(worker)
        try:
            await asyncio.wait_for(_read_frame(reader), START_TIMEOUT_S)
        except BaseException:
            self._retire(worker, replace=False)
            raise
        return worker

    async def pids(self) -> set[int]:
        """The process ids of the workers (tests stop and kill them)."""
        return {worker.process.pid for worker in self._workers if worker.process.pid is not None}

    async def examine(
        self, query: str, rules: _Rules, *, production: bool, request_id: str = "-"
    ) -> Examined:
        if not self._started or self._closed:
            raise DocumentsUnavailable("the document workers are not running")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while True:
            try:
                if self._idle.empty():
                    async with asyncio.timeout_at(deadline):
                        worker = await self._idle.get()
                else:
                    worker = self._idle.get_nowait()  # a worker free: no deadline to arm
            except TimeoutError as exc:
                log.warning("no document worker free", extra={"timeout_s": self.timeout_s})
                raise DocumentsUnavailable("the document workers are swamped") from exc
            if worker.process.is_alive():
                break
            self._retire(worker)  # died while idle: not this document's doing
        message = pickle.dumps((query, _packed(rules), production, request_id), protocol=5)
        try:
            worker.writer.write(_frame(message))
            async with asyncio.timeout(self.timeout_s):
                reply = await _read_frame(worker.reader)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
            timed_out = isinstance(exc, TimeoutError)
            log.warning(
                "a document worker timed out: replaced" if timed_out else "a document worker died: replaced",
                extra={"request_id": request_id},
            )
            self._retire(worker)
            raise DocumentsUnavailable("a document worker died or timed out") from exc
        except BaseException:
            self._retire(worker)  # cancelled: its answer would be read as the next document's
            raise
        self._idle.put_nowait(worker)
        ok, value = pickle.loads(reply)  # noqa: S301  # from our own worker
        if not ok:
            raise RuntimeError(f"document worker: {value}")
        assert isinstance(value, Examined)
        return value

    def _retire(self, worker: _Worker, *, replace: bool = True) -> None:
        """Stop `worker` and, unless closing, start another in its place (in the background)."""
        self._workers.discard(worker)
        worker.stop()
        task = asyncio.get_running_loop().create_task(self._reap(worker.process, replace=replace))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reap(self, process: BaseProcess, *, replace: bool) -> None:
        await asyncio.to_thread(process.join, 5)
        if not replace or self._closed:
            return
        try:
            worker = await self._spawn()
        except Exception:
            log.exception("a document worker could not be started")
            return
        if self._closed:
            self._retire(worker, replace=False)
            return
        self.replaced += 1
        self._idle.put_nowait(worker)

    async def aclose(self) -> None:
        self._closed = True
        for worker in list(self._workers):
            self._workers.discard(worker)
            worker.stop()
            await asyncio.to_thread(worker.process.join, 5)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
