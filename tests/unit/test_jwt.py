"""JwtTokenVerifier with HS256 pinned, and the settings rules that keep tokens safe."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from infra.identity.jwt import JwtTokenVerifier, issue_dev_token
from infra.settings import Settings
from services.core.errors import Unauthenticated

SECRET = "unit-test-secret-0123456789-abcdefghijklmnop"
ISSUER = "mediagraph-test"
AUDIENCE = "mediagraph-api-test"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "jwt_algorithms": ("HS256",),
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "jwt_jwks_url": None,
        "aws_endpoint_url": None,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
def verifier() -> JwtTokenVerifier:
    return JwtTokenVerifier(make_settings().tokens)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    base.update(changes)
    return base


def sign(payload: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def unsigned(payload: dict[str, Any], alg: str = "none") -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(payload)}."


async def refused(verifier: JwtTokenVerifier, token: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)
    # Clients learn only that the token was refused, never why.
    assert caught.value.code == "UNAUTHENTICATED"
    assert caught.value.message == "invalid or expired token"
    return caught.value


async def test_a_valid_token_names_its_user_and_roles(verifier: JwtTokenVerifier) -> None:
    principal = await verifier.verify(sign(claims(roles=["admin", "editor", 7, None])))

    assert principal.user_id == "alice"
    assert principal.roles == frozenset({"admin", "editor"})
    assert principal.is_admin


async def test_a_token_without_roles_has_none(verifier: JwtTokenVerifier) -> None:
    principal = await verifier.verify(sign(claims()))
    assert principal.roles == frozenset()
    assert not principal.is_admin


async def test_a_dev_token_is_accepted() -> None:
    settings = make_settings()
    principal = await JwtTokenVerifier(settings.tokens).verify(
        issue_dev_token(settings.tokens, "bob", roles=("admin",))
    )
    assert principal.user_id == "bob" and principal.is_admin


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_an_unsigned_token_is_refused(verifier: JwtTokenVerifier, alg: str) -> None:
    await refused(verifier, unsigned(claims(), alg))


async def test_a_token_signed_with_another_secret_is_refused(verifier: JwtTokenVerifier) -> None:
    await refused(verifier, sign(claims(), "another-secret-that-is-also-long-enough-0123"))


async def test_another_hmac_algorithm_than_the_pinned_one_is_refused(verifier: JwtTokenVerifier) -> None:
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):  # signing HS512 with a 44-byte key
        token = sign(claims(), SECRET, "HS512")
    await refused(verifier, token)


async def test_an_rs256_token_is_refused_when_hs256_is_pinned(verifier: JwtTokenVerifier) -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = sign(claims(), private_key, "RS256")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"

    await refused(verifier, token)


async def test_an_expired_token_is_refused(verifier: JwtTokenVerifier) -> None:
    now = int(time.time())
    await refused(verifier, sign(claims(iat=now - 3600, exp=now - 60)))


async def test_expiry_allows_the_configured_clock_leeway(verifier: JwtTokenVerifier) -> None:
    now = int(time.time())
    principal = await verifier.verify(sign(claims(iat=now - 3600, exp=now - 3)))
    assert principal.user_id == "alice"


async def test_a_token_issued_in_the_future_is_refused(verifier: JwtTokenVerifier) -> None:
    now = int(time.time())
    await refused(verifier, sign(claims(iat=now + 3600, exp=now + 7200)))


async def test_a_token_not_yet_valid_is_refused(verifier: JwtTokenVerifier) -> None:
    await refused(verifier, sign(claims(nbf=int(time.time()) + 3600)))


@pytest.mark.parametrize("aud", ["someone-else", "", ["someone-else", "and-another"]])
async def test_a_token_for_another_audience_is_refused(verifier: JwtTokenVerifier, aud: object) -> None:
    await refused(verifier, sign(claims(aud=aud)))


@pytest.mark.parametrize("iss", ["someone-else", "", "mediagraph"])
async def test_a_token_from_another_issuer_is_refused(verifier: JwtTokenVerifier, iss: str) -> None:
    await refused(verifier, sign(claims(iss=iss)))


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud"])
async def test_a_token_missing_a_required_claim_is_refused(verifier: JwtTokenVerifier, claim: str) -> None:
    payload = claims()
    del payload[claim]
    await refused(verifier, sign(payload))


@pytest.mark.parametrize("sub", ["", "x" * 129, 42, ["alice"], None])
async def test_a_token_with_a_bad_subject_is_refused(verifier: JwtTokenVerifier, sub: object) -> None:
    await refused(verifier, sign(claims(sub=sub)))


async def test_the_longest_subject_is_accepted(verifier: JwtTokenVerifier) -> None:
    assert (await verifier.verify(sign(claims(sub="x" * 128)))).user_id == "x" * 128


async def test_a_tampered_payload_is_refused(verifier: JwtTokenVerifier) -> None:
    header, _, signature = sign(claims()).split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(sub="root")).encode()).decode().rstrip("=")
    await refused(verifier, f"{header}.{forged}.{signature}")


@pytest.mark.parametrize(
    "garbage",
    ["", "garbage", "a.b.c", "a.b", "Bearer x.y.z", "....", "\u00e9.\u00e9.\u00e9", "x" * 10_000],
)
async def test_garbage_is_refused(verifier: JwtTokenVerifier, garbage: str) -> None:
    await refused(verifier, garbage)


# --- settings ----------------------------------------------------------------------------


def test_a_secret_of_32_bytes_is_enough() -> None:
    assert make_settings(jwt_secret="s" * 32).jwt_secret is not None


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("s" * 31, id="31-bytes"),
        pytest.param("", id="empty"),
        pytest.param("changeme", id="placeholder"),
    ],
)
def test_a_short_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        make_settings(jwt_secret=secret)


def test_hmac_without_a_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET is required"):
        make_settings(jwt_secret=None)


@pytest.mark.parametrize(
    "algorithms",
    [("HS256", "RS256"), ("RS256", "HS256"), ("HS512", "ES256"), "HS256,RS256"],
)
def test_mixing_hmac_and_key_algorithms_is_refused(algorithms: object) -> None:
    with pytest.raises(ValidationError, match="all HS"):
        make_settings(jwt_algorithms=algorithms, jwt_jwks_url="https://issuer.invalid/.well-known/jwks.json")


def test_key_algorithms_need_a_jwks_url() -> None:
    with pytest.raises(ValidationError, match="JWKS_URL is required"):
        make_settings(jwt_algorithms=("RS256",), jwt_secret=None, cursor_secret="c" * 32)
