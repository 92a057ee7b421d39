"""Custom scalars, described in the SDL so code generators can map them (clients/js maps
DateTime to string and Long to number). Long: byte sizes beyond GraphQL Int's 2^31-1."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import NewType

import strawberry
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

_MAX_LONG = 2**63 - 1

Long = NewType("Long", int)


def _parse_long(value: object) -> int:
    # Accept JSON numbers and decimal strings (JavaScript clients lose precision past 2^53).
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("Long must be an integer or a decimal string")
    number = int(value)
    if not 0 <= number <= _MAX_LONG:
        raise ValueError("Long out of range")
    return number


SCALARS: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long",
        description="A non-negative 64-bit integer (sizes in bytes), sent as a JSON number: exact in "
        "JavaScript up to 2^53 (8 PiB). Accepts numbers or decimal strings.",
        serialize=int,
        parse_value=_parse_long,
    ),
    # Strawberry's own DateTime, with a description and the spec it follows (RFC 3339).
    datetime: dataclasses.replace(
        DateTimeDefinition,
        description="A date and time in RFC 3339 / ISO 8601 with its UTC offset, as a string, e.g. "
        "2026-12-04T12:00:00.123456+00:00. Inputs without an offset are taken as UTC.",
        specified_by_url="https://scalars.graphql.org/andimarek/date-time",
    ),
}
