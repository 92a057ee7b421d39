"""Operations built from the schema itself (introspected over HTTP), so a new root field is
covered by the IDOR sweep and the fuzz run without anyone remembering to add it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLOutputType,
    GraphQLSchema,
    build_client_schema,
    get_introspection_query,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.pyutils import Undefined

from tests.client import gql

ROOTS = ("query", "mutation", "subscription")


async def client_schema(api: str, token: str | None = None) -> GraphQLSchema:
    body = await gql(api, get_introspection_query(), token=token)
    assert "errors" not in body, body
    return build_client_schema(body["data"])


def root_fields(schema: GraphQLSchema) -> list[tuple[str, str, GraphQLField]]:
    """(operation kind, field name, field) for every root field of the schema."""
    fields: list[tuple[str, str, GraphQLField]] = []
    for kind, root in zip(
        ROOTS, (schema.query_type, schema.mutation_type, schema.subscription_type), strict=True
    ):
        if root is not None:
            fields.extend((kind, name, field) for name, field in root.fields.items())
    return fields


def selection(schema: GraphQLSchema, type_: GraphQLOutputType, depth: int) -> str:
    """Every field reachable without required arguments, `depth` levels down."""
    named = get_named_type(type_)
    if is_leaf_type(named):
        return ""
    parts = ["__typename"]
    if depth > 0:
        fields: dict[str, GraphQLField] = getattr(named, "fields", {})
        for name, field in fields.items():
            if any(_required(arg) for arg in field.args.values()):
                continue
            parts.append(f"{name} {selection(schema, field.type, depth - 1)}".strip())
        if is_abstract_type(named):
            for possible in schema.get_possible_types(named):
                parts.append(f"... on {possible.name} {selection(schema, possible, depth - 1)}")
    return "{ " + " ".join(parts) + " }"


def _required(arg: GraphQLArgument) -> bool:
    return is_non_null_type(arg.type) and arg.default_value is Undefined


Literal = Callable[[str, GraphQLInputType], str | None]


@dataclass
class Filler:
    """Literal values for arguments: `ids` answers ID arguments, `pick` may override any."""

    media_id: str
    user_id: str

    def literal(self, name: str, type_: GraphQLInputType) -> str:
        if isinstance(type_, GraphQLNonNull):
            return self.literal(name, type_.of_type)
        if isinstance(type_, GraphQLList):
            return f"[{self.literal(name, type_.of_type)}]"
        if isinstance(type_, GraphQLEnumType):
            return str(next(iter(type_.values)))
        if isinstance(type_, GraphQLInputObjectType):
            fields = [
                f"{field_name}: {self.literal(field_name, field.type)}"
                for field_name, field in type_.fields.items()
                if is_non_null_type(field.type) and field.default_value is Undefined
            ]
            return "{ " + ", ".join(fields) + " }"
        scalar = type_.name
        if scalar == "ID":
            return json.dumps(self.user_id if "user" in name.lower() else self.media_id)
        if scalar in ("Int", "Long"):
            return "1"
        if scalar == "Float":
            return "1.0"
        if scalar == "Boolean":
            return "false"
        if scalar == "DateTime":
            return '"2026-01-01T00:00:00Z"'
        if name == "tag":
            return '"sunset"'
        if name == "sha256":
            return json.dumps("0" * 64)
        return '"x"'

    def arguments(self, field: GraphQLField) -> str:
        """Every required argument, and every ID argument even when optional."""
        chosen = [
            f"{name}: {self.literal(name, arg.type)}"
            for name, arg in field.args.items()
            if _required(arg) or get_named_type(arg.type).name == "ID"
        ]
        return f"({', '.join(chosen)})" if chosen else ""


def operation(
    schema: GraphQLSchema, kind: str, name: str, field: GraphQLField, filler: Filler, depth: int = 4
) -> str:
    return f"{kind} {{ {name}{filler.arguments(field)} {selection(schema, field.type, depth)} }}"


def text_of(body: object) -> str:
    return json.dumps(body)
