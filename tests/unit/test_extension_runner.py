"""The lean extension runner (schema/extension_runner.py) behaves as Strawberry's own: the same
hooks run in the same order, and an error raised inside a phase reaches, is swallowed by or is
replaced by the hooks exactly as with Strawberry's contextlib-based runner."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner

from schema.extension_runner import LeanExtensionsRunner


class Boom(Exception):
    pass


class Other(Exception):
    pass


def extensions(log: list[str], behaviour: dict[str, str]) -> list[SchemaExtension]:
    """Three extensions with every kind of hook; `behaviour[name]` makes one swallow the
    error it is thrown ("swallow"), replace it ("replace"), or yield twice ("again")."""

    def leave(name: str) -> Iterator[None]:
        try:
            yield
        except Boom as error:
            log.append(f"{name} saw {error!r}")
            if behaviour.get(name) == "swallow":
                return
            if behaviour.get(name) == "replace":
                raise Other(name) from error
            raise
        log.append(f"{name} after")
        if behaviour.get(name) == "again":
            yield

    class Sync(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append("sync op before")
            yield from leave("sync op")

        def on_execute(self) -> Iterator[None]:
            log.append("sync execute before")
            yield from leave("sync execute")

    class Async(SchemaExtension):
        async def on_operation(self) -> AsyncIterator[None]:
            log.append("async op before")
            try:
                yield
            except Exception as error:
                log.append(f"async op saw {error!r}")
                raise
            log.append("async op after")

        async def on_parse(self) -> AsyncIterator[None]:
            log.append("async parse before")
            yield
            log.append("async parse after")

    class Plain(SchemaExtension):
        def on_validate(self) -> None:  # type: ignore[override]
            log.append("plain validate")

        async def on_parse(self) -> None:  # type: ignore[override]
            log.append("plain parse")

    return [Sync(), Async(), Plain()]


async def run(
    runner_type: type[SchemaExtensionsRunner], behaviour: dict[str, str], raise_in: str | None
) -> list[str]:
    log: list[str] = []
    runner = runner_type(execution_context=None, extensions=extensions(log, behaviour))  # type: ignore[arg-type]
    try:
        async with runner.operation():
            async with runner.parsing():
                log.append("parsing")
            async with runner.validation():
                log.append("validating")
            with runner.executing():
                log.append("executing")
                if raise_in == "execute":
                    raise Boom("in execute")
            if raise_in == "operation":
                raise Boom("in operation")
    except Exception as error:
        log.append(f"raised {error!r}")
    return log


SCENARIOS: list[tuple[dict[str, str], str | None]] = [
    ({}, None),
    ({}, "execute"),
    ({}, "operation"),
    ({"sync execute": "swallow"}, "execute"),
    ({"sync op": "swallow"}, "operation"),
    ({"sync execute": "replace"}, "execute"),
    ({"sync op": "replace"}, "operation"),
    ({"sync execute": "again"}, None),
]


@pytest.mark.parametrize(("behaviour", "raise_in"), SCENARIOS)
async def test_same_hooks_same_order_same_errors(behaviour: dict[str, str], raise_in: str | None) -> None:
    ours = await run(LeanExtensionsRunner, behaviour, raise_in)
    strawberry = await run(SchemaExtensionsRunner, behaviour, raise_in)
    assert ours == strawberry
    assert "executing" in ours


async def test_an_async_hook_in_a_sync_phase_is_refused_as_strawberry_does() -> None:
    class Late(SchemaExtension):
        async def on_execute(self) -> AsyncIterator[None]:
            yield

    for runner_type in (LeanExtensionsRunner, SchemaExtensionsRunner):
        runner: Any = runner_type(execution_context=None, extensions=[Late()])  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="failed to complete synchronously"), runner.executing():
            pass
