"""Settings groups: the environment is read and validated once, flat (the variable names stay
those of docs/configuration.md, .env.example and the template); each adapter receives its group."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from infra.settings import Settings, TokenConfig

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s" * 40
# Builders that still take the whole Settings, and why (docs/architecture.md, "Settings groups").
WHOLE_SETTINGS = {
    "infra/roots",  # the composition roots hand the groups out
    "infra/settings.py",
    "infra/media/pipeline.py",  # builds the pipeline's steps from ~20 fields (a root in all but name)
}


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **{"jwt_secret": SECRET, **values})  # type: ignore[arg-type]  # pydantic validates at runtime


def test_groups_carry_the_validated_fields() -> None:
    settings = _settings(aws_region="eu-west-1", bucket="b", redis_prefix="p:", ws_max_message_bytes=4096)
    assert settings.aws.region == "eu-west-1" and settings.aws.bucket == "b"
    assert settings.redis.prefix == "p:"
    assert settings.server.ws_max_message_bytes == 4096
    assert settings.tokens.secret is not None and settings.tokens.algorithms == ("HS256",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.aws.bucket = "other"  # type: ignore[misc]


def test_the_identity_providers_tokens_are_checked_like_the_apis() -> None:
    # No copy of the settings with fields swapped in (model_copy skips validation): its own group.
    settings = _settings(idp_jwks_url="https://idp.example.com/jwks", idp_issuer="https://idp.example.com")
    idp = settings.idp_tokens
    assert (idp.jwks_url, idp.issuer, idp.secret) == (
        "https://idp.example.com/jwks",
        settings.idp_issuer,
        None,
    )
    assert set(idp.algorithms) == {"RS256", "ES256"}
    with pytest.raises(ValidationError, match="MEDIAGRAPH_IDP_ISSUER"):
        _settings(idp_jwks_url="https://idp.example.com/jwks")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"secret": None}, "MEDIAGRAPH_JWT_SECRET is required"),
        ({"secret": SecretStr("short")}, "at least 32 bytes"),
        ({"algorithms": ("HS256", "RS256")}, "all HS"),
        ({"algorithms": ("RS256",), "secret": None}, "MEDIAGRAPH_JWT_JWKS_URL is required"),
        ({"issuer": ""}, "MEDIAGRAPH_JWT_ISSUER"),
    ],
)
def test_a_token_group_refuses_what_settings_refuse(changes: dict[str, object], message: str) -> None:
    good = _settings().tokens
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(good, **changes)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        TokenConfig(**{**{f.name: getattr(good, f.name) for f in dataclasses.fields(good)}, **changes})


def test_adapters_take_their_group_not_the_whole_settings() -> None:
    offenders = []
    for path in sorted((ROOT / "infra").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if any(relative == allowed or relative.startswith(allowed + "/") for allowed in WHOLE_SETTINGS):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            imported = (
                node.names if isinstance(node, ast.ImportFrom) and node.module == "infra.settings" else []
            )
            if any(alias.name == "Settings" for alias in imported):
                offenders.append(relative)
    assert offenders == []
