"""Media ids are canonical ASCII: another Unicode spelling of an id names no media."""

from __future__ import annotations

import base64

import pytest

from schema.types.media import decode_media_id
from services.core.errors import NotFound

ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def global_id(type_name: str, node_id: str) -> str:
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()


def test_the_raw_and_the_global_id_name_the_media() -> None:
    assert decode_media_id(ULID) == ULID
    assert decode_media_id(ULID.lower()) == ULID
    assert decode_media_id(global_id("Media", ULID)) == ULID


@pytest.mark.parametrize(
    "spelling",
    [
        ULID.replace("S", "\u017f"),  # LATIN SMALL LETTER LONG S, whose upper() is "S"
        ULID.replace("0", "\uff10").replace("1", "\uff11"),  # fullwidth digits
        ULID.replace("A", "\uff21"),  # fullwidth letter
        ULID.replace("1", "\u0661"),  # ARABIC-INDIC DIGIT ONE
        ULID[:-1] + "\u212a",  # KELVIN SIGN, lower() is "k"
    ],
)
def test_other_spellings_name_no_media(spelling: str) -> None:
    with pytest.raises(NotFound):
        decode_media_id(spelling)
    with pytest.raises(NotFound):
        decode_media_id(global_id("Media", spelling))
