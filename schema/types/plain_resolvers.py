"""Our own argument-less field resolvers, called without Strawberry's per-field wrapper.

Strawberry resolves a field with a resolver through a chain built for the general case: an Info
object, the argument conversion, the field extensions, the exception handlers. For a resolver of
ours that takes no arguments and only `self` and `info`, uses nothing of `info` but `.context`
and has no field extension, all of that does nothing, yet costs several microseconds per field
per item: on a 50-item page, more than the page's reads. After the schema is built, such fields
get a resolver calling the method directly, with graphql-core's own info (which carries the same
context). Everything else keeps Strawberry's resolver; the SDL does not change.

A resolver must be defined in schema/types/ and use `info` only for `info.context` to be taken
(tests/unit/test_plain_resolvers.py checks the second by reading the source).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLObjectType
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

OURS = "schema.types."


def plain_candidates(schema: strawberry.Schema) -> dict[tuple[str, str], Callable[..., Any]]:
    """(type name, field name) -> the method, for every field that qualifies."""
    found: dict[tuple[str, str], Callable[..., Any]] = {}
    for type_name, graphql_type in schema._schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for field_name, graphql_field in graphql_type.fields.items():
            field = (graphql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if not isinstance(field, StrawberryField) or field.base_resolver is None:
                continue
            function = field.base_resolver.wrapped_func
            if (
                field.extensions
                or field.base_resolver.arguments
                or field.is_subscription
                or not inspect.isfunction(function)
                or not function.__module__.startswith(OURS)
                or list(inspect.signature(function).parameters) not in (["self"], ["self", "info"])
            ):
                continue
            found[(type_name, field_name)] = function
    return found


def installed(build: Callable[[], strawberry.Schema]) -> Callable[[], strawberry.Schema]:
    """Decorates the schema's builder: the schema it returns has the direct resolvers."""

    @functools.wraps(build)
    def build_and_install() -> strawberry.Schema:
        schema = build()
        install(schema)
        return schema

    return build_and_install


def install(schema: strawberry.Schema) -> None:
    for (type_name, field_name), function in plain_candidates(schema).items():
        graphql_type = schema._schema.type_map[type_name]
        assert isinstance(graphql_type, GraphQLObjectType)
        takes_info = "info" in inspect.signature(function).parameters
        graphql_type.fields[field_name].resolve = _direct(function, takes_info=takes_info)


def _direct(function: Callable[..., Any], *, takes_info: bool) -> Callable[..., Any]:
    if takes_info:

        def resolve(source: Any, info: Any) -> Any:
            return function(source, info)

    else:

        def resolve(source: Any, info: Any) -> Any:
            return function(source)

    return resolve
