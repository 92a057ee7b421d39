"""The document workers (schema/document_workers.py): a document examined in a worker process
comes back as the API process would have answered it, and a worker that dies is replaced, the
documents it held answered at once."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
from collections.abc import AsyncIterator

import pytest
from graphql import DocumentNode, GraphQLError, print_ast, specified_rules

from schema.document_workers import DocumentWorkers, examine
from schema.documents import MAX_ERRORS, DocumentsUnavailable, capped, validate
from schema.extensions import shape_error
from schema.limits import MAX_TOKENS, PRODUCTION_RULES, RULES, document_limits, with_metered_overlap
from schema.rate_limits import operation_cost
from schema.root import build_schema
from services.core.pagination import MAX_PAGE_SIZE
from tests.hostile import DOCUMENTS

LIMITS = document_limits(MAX_PAGE_SIZE)
RULES_USED = (*with_metered_overlap(tuple(specified_rules)), *RULES)


def in_process(query: str, *, production: bool = False) -> list[dict[str, object]] | DocumentNode:
    """What the API process makes of `query` without workers: its shaped errors, or the document."""
    from graphql import parse

    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as error:
        return [dict(shape_error(error, "-", hide_suggestions=production).formatted)]
    errors = capped(validate(build_schema()._schema, document, RULES_USED, LIMITS))
    if errors:
        return [dict(shape_error(error, "-", hide_suggestions=production).formatted) for error in errors]
    return document


@pytest.mark.parametrize("hostile", DOCUMENTS, ids=[hostile.name for hostile in DOCUMENTS])
def test_a_worker_examines_each_corpus_document_as_the_api_process_does(hostile: object) -> None:
    query = hostile.query  # type: ignore[attr-defined]
    examined = examine(build_schema()._schema, query, RULES_USED, LIMITS, MAX_TOKENS, production=False)
    expected = in_process(query)
    if isinstance(expected, DocumentNode):
        assert examined.errors == () and examined.document is not None
        document = pickle.loads(examined.document)  # noqa: S301  # made by the test
        assert print_ast(document) == print_ast(expected)
        costs = [operation_cost(expected, name) for _, name in examined.operations]
        assert list(examined.costs) == costs
    else:
        assert list(examined.errors) == expected
        assert examined.document is None
        assert len(examined.errors) <= MAX_ERRORS + 1


def test_errors_are_bounded_with_a_note_of_the_rest() -> None:
    query = "{ __typename " + "@include(if: true) " * 250 + "}"  # 100 errors from graphql-core
    examined = examine(build_schema()._schema, query, RULES_USED, LIMITS, MAX_TOKENS, production=False)
    assert len(examined.errors) == MAX_ERRORS + 1
    assert examined.errors[-1]["message"].endswith("more errors not shown.")
    assert {error["extensions"]["code"] for error in examined.errors} == {"BAD_USER_INPUT"}


def test_production_hides_suggestions_in_the_worker_too() -> None:
    rules = (*with_metered_overlap(tuple(specified_rules)), *PRODUCTION_RULES)
    examined = examine(
        build_schema()._schema, "{ feeed { totalCount } }", rules, LIMITS, MAX_TOKENS, production=True
    )
    assert examined.errors and "Did you mean" not in examined.errors[0]["message"]
    development = examine(
        build_schema()._schema, "{ feeed { totalCount } }", rules, LIMITS, MAX_TOKENS, production=False
    )
    assert "Did you mean" in development.errors[0]["message"]


@pytest.fixture
async def workers() -> AsyncIterator[DocumentWorkers]:
    pool = DocumentWorkers(1, timeout_s=5)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.aclose()


async def test_the_pool_answers_a_document(workers: DocumentWorkers) -> None:
    accepted = await workers.examine("{ feed { totalCount } }", RULES_USED, production=False)
    assert accepted.errors == () and accepted.document is not None
    refused = await workers.examine("{ ...A } fragment A on Query { ...A }", RULES_USED, production=False)
    assert refused.document is None and refused.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def replaced(workers: DocumentWorkers, old: int) -> None:
    for _ in range(600):
        if workers.replaced and old not in await workers.pids() and await workers.pids():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the worker was not replaced")


async def test_a_worker_that_dies_mid_document_fails_that_document_and_is_replaced(
    workers: DocumentWorkers,
) -> None:
    (pid,) = await workers.pids()
    os.kill(pid, signal.SIGSTOP)  # it will not answer this document...
    examining = asyncio.create_task(workers.examine("{ feed { totalCount } }", RULES_USED, production=False))
    await asyncio.sleep(0.2)
    assert not examining.done()
    os.kill(pid, signal.SIGKILL)  # ...and dies holding it
    with pytest.raises(DocumentsUnavailable):
        await examining
    await replaced(workers, pid)
    examined = await workers.examine("{ feed { totalCount } }", RULES_USED, production=False)
    assert examined.errors == () and examined.document is not None


async def test_a_worker_that_does_not_answer_is_killed_and_replaced() -> None:
    workers = DocumentWorkers(1, timeout_s=0.5)
    await workers.start()
    try:
        (pid,) = await workers.pids()
        os.kill(pid, signal.SIGSTOP)
        with pytest.raises(DocumentsUnavailable):
            await workers.examine("{ feed { totalCount } }", RULES_USED, production=False)
        await replaced(workers, pid)
        workers.timeout_s = 30
        examined = await workers.examine("{ feed { totalCount } }", RULES_USED, production=False)
        assert examined.document is not None
    finally:
        await workers.aclose()


async def test_a_worker_killed_between_documents_costs_no_answer(workers: DocumentWorkers) -> None:
    (pid,) = await workers.pids()
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):  # dead, not yet noticed by the pool
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z":  # noqa: SIM115
            break
        await asyncio.sleep(0.02)
    examined = await workers.examine("{ feed { totalCount } }", RULES_USED, production=False)
    assert examined.document is not None
    assert workers.replaced == 1


async def test_a_pool_not_started_or_closed_refuses_at_once() -> None:
    pool = DocumentWorkers(1)
    with pytest.raises(DocumentsUnavailable):
        await pool.examine("{ __typename }", RULES_USED, production=False)
    await pool.start()
    await pool.aclose()
    with pytest.raises(DocumentsUnavailable):
        await pool.examine("{ __typename }", RULES_USED, production=False)


def test_the_production_profile_gets_the_workers_and_development_none() -> None:
    from infra.settings import Profile, Settings

    development = Settings(_env_file=None, jwt_secret="a-test-secret-0123456789-0123456789-0123")
    assert development.effective_document_workers == 0
    production = development.model_copy(update={"profile": Profile.PRODUCTION})
    assert production.effective_document_workers == min(2, production.worker_cores) >= 1
    assert production.model_copy(update={"document_workers": 0}).effective_document_workers == 0


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policy")
async def test_workers_run_as_idle_work_so_any_woken_process_takes_their_core(
    workers: DocumentWorkers,
) -> None:
    (pid,) = await workers.pids()
    assert os.sched_getscheduler(pid) == os.SCHED_IDLE
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the API process keeps its own


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policy")
async def test_the_batch_policy_runs_workers_as_batch_work() -> None:
    pool = DocumentWorkers(1, timeout_s=5, policy="batch")
    await pool.start()
    try:
        (pid,) = await pool.pids()
        assert os.sched_getscheduler(pid) == os.SCHED_BATCH
        answered = await pool.examine("{ feed { totalCount } }", RULES_USED, production=False)
        assert answered.document is not None
    finally:
        await pool.aclose()


def test_the_policy_is_one_the_workers_know() -> None:
    from pydantic import ValidationError

    from infra.settings import Settings

    with pytest.raises(ValueError, match="policy: one of idle, batch"):
        DocumentWorkers(1, policy="realtime")
    settings = Settings(_env_file=None, jwt_secret="a-test-secret-0123456789-0123456789-0123")
    assert settings.document_worker_policy == "idle"  # the shipped default
    with pytest.raises(ValidationError, match="document_worker_policy"):
        Settings(
            _env_file=None,
            jwt_secret="a-test-secret-0123456789-0123456789-0123",
            document_worker_policy="realtime",
        )


async def test_workers_run_at_the_configured_lower_priority() -> None:
    from infra.settings import Settings

    settings = Settings(_env_file=None, jwt_secret="a-test-secret-0123456789-0123456789-0123")
    assert settings.document_worker_nice == 10  # the shipped default
    pool = DocumentWorkers(1, timeout_s=5, nice=settings.document_worker_nice, policy="batch")
    await pool.start()
    try:
        (pid,) = await pool.pids()
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + 10)
        # Still answering at that priority.
        answered = await pool.examine("{ feed { totalCount } }", RULES_USED, production=False)
        assert answered.document is not None
    finally:
        await pool.aclose()
