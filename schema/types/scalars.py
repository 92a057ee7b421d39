"""Custom scalars. Long: byte sizes beyond GraphQL Int's 2^31-1."""

from __future__ import annotations

from typing import NewType

import strawberry
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
        description="A non-negative 64-bit integer (sizes in bytes). Accepts numbers or decimal strings.",
        serialize=int,
        parse_value=_parse_long,
    )
}
