"""Token verification: issuer, audience, expiry and signature all checked; the tenant only from the claim."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from tenant_analytics.errors import Unauthorized
from tenant_analytics.query.auth import DevSigner, TokenVerifier

ISS, AUD = "https://issuer.test/", "api"


@pytest.fixture
def signer(tmp_path: Path) -> DevSigner:
    return DevSigner(tmp_path / "key.pem", issuer=ISS, audience=AUD)


@pytest.fixture
def verifier(signer: DevSigner) -> TokenVerifier:
    return TokenVerifier(issuer=ISS, audience=AUD, jwks=signer.jwks())


def test_a_valid_token_yields_its_tenant(signer: DevSigner, verifier: TokenVerifier) -> None:
    assert verifier.tenant_of(f"Bearer {signer.sign('acme')}") == "acme"


def test_expired_forged_wrong_audience_and_missing_tokens_are_rejected(
    signer: DevSigner, verifier: TokenVerifier, tmp_path: Path
) -> None:
    other = DevSigner(tmp_path / "other.pem", issuer=ISS, audience=AUD)  # a key the verifier does not know
    wrong_aud = DevSigner(tmp_path / "key.pem", issuer=ISS, audience="someone-else")
    cases = {
        "expired": f"Bearer {signer.sign('acme', ttl_seconds=-10)}",
        "unknown key": f"Bearer {other.sign('acme')}",
        "not valid": f"Bearer {wrong_aud.sign('acme')}",
        "missing credential": None,
        "must be 'Bearer": f"Basic {signer.sign('acme')}",
    }
    for message, header in cases.items():
        with pytest.raises(Unauthorized, match=message):
            verifier.tenant_of(header)


def test_an_unsigned_token_is_rejected(verifier: TokenVerifier, signer: DevSigner) -> None:
    kid = signer.jwks()["keys"][0]["kid"]
    token = jwt.encode(
        {"iss": ISS, "aud": AUD, "sub": "x", "exp": 9999999999, "tenant_id": "acme"},
        None,
        algorithm="none",
        headers={"kid": kid},
    )
    with pytest.raises(Unauthorized):
        verifier.tenant_of(f"Bearer {token}")


@pytest.mark.parametrize("claim", ["acme\n", "Acme", "a", "acme;drop", "", 42])
def test_a_signed_claim_that_is_not_exactly_a_tenant_id_is_rejected(
    signer: DevSigner, verifier: TokenVerifier, claim: object
) -> None:
    # A validly signed token whose tenant claim merely starts like a tenant id (a trailing newline) names no tenant
    with pytest.raises(Unauthorized, match="token claim 'tenant_id' is not a tenant id"):
        verifier.tenant_of(f"Bearer {signer.sign(claim)}")  # type: ignore[arg-type]
