"""Credentials: RS256 JWTs checked against a JWKS (issuer, audience, expiry); the tenant comes from a claim only."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tenant_analytics.errors import Unauthorized
from tenant_analytics.tenants.models import is_tenant_id

TENANT_CLAIM = "tenant_id"


class TokenVerifier:
    """Verifies bearer tokens and returns the tenant they were issued for."""

    def __init__(self, *, issuer: str, audience: str, jwks: dict[str, Any] | None = None, jwks_url: str | None = None):
        if (jwks is None) == (jwks_url is None):
            raise ValueError("give exactly one of jwks or jwks_url")
        self._issuer = issuer
        self._audience = audience
        self._keys = jwt.PyJWKSet.from_dict(jwks) if jwks is not None else None
        self._client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if jwks_url else None

    def _key_for(self, token: str) -> Any:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = jwt.get_unverified_header(token).get("kid")
        assert self._keys is not None
        for key in self._keys.keys:
            if key.key_id == kid:
                return key.key
        raise Unauthorized("token is signed by an unknown key")

    def tenant_of(self, authorization: str | None) -> str:
        """Return the tenant id of a valid ``Bearer <jwt>`` credential; raise Unauthorized otherwise."""
        if not authorization:
            raise Unauthorized("missing credential: send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("credential must be 'Bearer <token>'")
        token = token.strip()
        try:
            claims = jwt.decode(
                token,
                self._key_for(token),
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iss", "aud", "sub", TENANT_CLAIM]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token has expired") from exc
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
            raise Unauthorized(f"token is not valid: {exc}") from exc
        tenant = claims[TENANT_CLAIM]
        if not is_tenant_id(tenant):
            raise Unauthorized(f"token claim '{TENANT_CLAIM}' is not a tenant id")
        return tenant


class DevSigner:
    """A development signing key kept under the local home; signs tokens for the local API only."""

    def __init__(self, key_path: Path, *, issuer: str, audience: str) -> None:
        self._issuer = issuer
        self._audience = audience
        if not key_path.exists():
            key_path.parent.mkdir(parents=True, exist_ok=True)
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_path.write_bytes(
                private.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
            key_path.chmod(0o600)
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        self._private = loaded
        self._kid = "dev-" + str(uuid.uuid5(uuid.NAMESPACE_URL, str(key_path.resolve())))[:8]

    def jwks(self) -> dict[str, Any]:
        public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._private.public_key()))
        public_jwk.update({"kid": self._kid, "use": "sig", "alg": "RS256"})
        return {"keys": [public_jwk]}

    def sign(self, tenant_id: str, *, ttl_seconds: int = 3600, subject: str = "local-developer") -> str:
        now = int(time.time())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "iat": now,
            "exp": now + ttl_seconds,
            TENANT_CLAIM: tenant_id,
        }
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self._kid})
