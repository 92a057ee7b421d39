"""The direct resolvers (schema/types/plain_resolvers.py): taken only where Strawberry's wrapper
does nothing, and answering what it would."""

from __future__ import annotations

import inspect
import re

from schema.root import build_schema
from schema.types.plain_resolvers import plain_candidates


def test_the_direct_resolvers_use_nothing_of_info_but_its_context() -> None:
    candidates = plain_candidates(build_schema())
    assert {("Media", "mediaId"), ("Media", "url"), ("Media", "likeCount"), ("MediaVariant", "url")} <= set(
        candidates
    )
    for (type_name, field_name), function in candidates.items():
        uses = set(re.findall(r"\binfo\.(\w+)", inspect.getsource(function)))
        assert uses <= {"context"}, f"{type_name}.{field_name} reads info.{uses - {'context'}}"


def test_fields_with_arguments_or_extensions_keep_strawberrys_resolver() -> None:
    candidates = plain_candidates(build_schema())
    assert ("Query", "media") not in candidates  # arguments
    assert ("Query", "feed") not in candidates  # arguments and the rate limit
    assert ("Media", "id") not in candidates  # Strawberry's own relay resolver
