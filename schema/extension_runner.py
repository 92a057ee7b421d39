"""Strawberry's schema-extension runner, without its per-request wrapping.

For every phase of every request (operation, parsing, validation, execution), Strawberry's runner
looks up each extension's hook, checks what kind of function it is (`inspect`), wraps it in a fresh
`contextlib` context manager (`functools.update_wrapper` included) and enters it through an
`ExitStack`: about a tenth of the CPU of a cached `media(id)` read (docs/performance.md). The hooks
of an extension class never change, so this runner classifies them once per class and drives the
generators itself, with `contextlib`'s semantics: hooks enter in the extensions' order and leave
in reverse; an exception raised inside a phase is thrown into each hook's generator, innermost
first; one that a hook swallows (its generator returns) spares the hooks outside it in that phase
but still leaves the phase; a hook that raises replaces it. Sync hooks in a sync phase, either
kind in an async phase, as Strawberry does.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner

_SYNC, _ASYNC, _CALL, _ACALL = range(4)
_Hook = tuple[int, Callable[..., Any]]


_classified: dict[tuple[type[SchemaExtension], str], _Hook | None] = {}


def _hooks_of(extension_type: type[SchemaExtension], phase: str) -> _Hook | None:
    """How `extension_type` takes part in `phase`, or None: decided once per class."""
    key = (extension_type, phase)
    if key not in _classified:
        _classified[key] = _classify(extension_type, phase)
    return _classified[key]


def _classify(extension_type: type[SchemaExtension], phase: str) -> _Hook | None:
    hook = getattr(extension_type, phase)
    if hook is getattr(SchemaExtension, phase):
        return None
    if inspect.isgeneratorfunction(hook):
        return _SYNC, hook
    if inspect.isasyncgenfunction(hook):
        return _ASYNC, hook
    if inspect.iscoroutinefunction(hook):
        return _ACALL, hook
    if callable(hook):
        return _CALL, hook
    raise ValueError(f"Hook {phase} on {extension_type} must be callable, received {hook!r}")


class _Phase:
    """One phase of one request, as a context manager (sync or async)."""

    __slots__ = ("_entered", "_extensions", "_phase")

    def __init__(self, extensions: list[SchemaExtension], phase: str) -> None:
        self._extensions = extensions
        self._phase = phase
        self._entered: list[tuple[bool, Generator[Any, None, None] | AsyncGenerator[Any, None]]] = []

    def _hooks(self) -> list[tuple[SchemaExtension, int, Callable[..., Any]]]:
        found = []
        for extension in self._extensions:
            hook = _hooks_of(type(extension), self._phase)
            if hook is not None:
                found.append((extension, *hook))
        return found

    def __enter__(self) -> None:
        for extension, kind, hook in self._hooks():
            if kind in (_ASYNC, _ACALL):
                raise RuntimeError(
                    f"SchemaExtension hook {extension}.{self._phase} failed to complete synchronously."
                )
            if kind == _CALL:
                hook(extension)
                continue
            generator = hook(extension)
            next(generator)
            self._entered.append((False, generator))

    async def __aenter__(self) -> None:
        for extension, kind, hook in self._hooks():
            if kind == _CALL:
                hook(extension)
            elif kind == _ACALL:
                await hook(extension)
            elif kind == _SYNC:
                generator = hook(extension)
                next(generator)
                self._entered.append((False, generator))
            else:
                agenerator = hook(extension)
                await agenerator.__anext__()
                self._entered.append((True, agenerator))

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool:
        pending = error
        while self._entered:
            is_async, generator = self._entered.pop()
            assert not is_async
            pending = _leave(generator, pending)  # type: ignore[arg-type]
        return _outcome(error, pending)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool:
        pending = error
        while self._entered:
            is_async, generator = self._entered.pop()
            if is_async:
                pending = await _aleave(generator, pending)  # type: ignore[arg-type]
            else:
                pending = _leave(generator, pending)  # type: ignore[arg-type]
        return _outcome(error, pending)


def _outcome(error: BaseException | None, pending: BaseException | None) -> bool:
    """Strawberry's answer: a phase never swallows the error raised inside it (a hook that
    swallows it only spares the hooks outside it in that phase), and a new error replaces it."""
    if pending is None or pending is error:
        return False
    raise pending


def _leave(generator: Generator[Any, None, None], error: BaseException | None) -> BaseException | None:
    """Resume a sync hook after its yield: the error still pending afterwards, if any."""
    try:
        if error is None:
            next(generator)
        else:
            generator.throw(error)
    except StopIteration:
        return None
    except BaseException as raised:  # handed on, as contextlib's ExitStack does
        return raised
    return RuntimeError("generator didn't stop")


async def _aleave(generator: AsyncGenerator[Any, None], error: BaseException | None) -> BaseException | None:
    try:
        if error is None:
            await generator.__anext__()
        else:
            await generator.athrow(error)
    except StopAsyncIteration:
        return None
    except BaseException as raised:
        return raised
    return RuntimeError("generator didn't stop")


class LeanExtensionsRunner(SchemaExtensionsRunner):
    def operation(self) -> _Phase:  # type: ignore[override]
        return _Phase(self.extensions, "on_operation")

    def parsing(self) -> _Phase:  # type: ignore[override]
        return _Phase(self.extensions, "on_parse")

    def validation(self) -> _Phase:  # type: ignore[override]
        return _Phase(self.extensions, "on_validate")

    def executing(self) -> _Phase:  # type: ignore[override]
        return _Phase(self.extensions, "on_execute")
