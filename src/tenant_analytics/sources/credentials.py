"""Per-tenant source API credentials, kept in AWS Secrets Manager as ``{"email": ..., "api_token": ...}``."""

from __future__ import annotations

import json
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, SecretStr, StrictStr, ValidationError

from tenant_analytics.errors import SourceError
from tenant_analytics.sources.records import error_location


class SecretsClient(Protocol):
    """The part of a boto3 ``secretsmanager`` client this module uses."""

    def get_secret_value(self, *, SecretId: str) -> Any: ...


class SourceCredentials(BaseModel):
    """An agent's email and API token; ``api_token`` never appears in reprs or logs."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    email: StrictStr
    api_token: SecretStr

    @property
    def basic_auth(self) -> tuple[str, str]:
        """Return the HTTP basic auth pair for token access: ``("<email>/token", "<api token>")``."""
        return f"{self.email}/token", self.api_token.get_secret_value()


def load_credentials(secrets_client: SecretsClient, secret_id: str) -> SourceCredentials:
    """Read and validate the credentials stored in secret ``secret_id``.

    Raises ``SourceError`` naming the secret (never its value) if it cannot be read, is not a JSON object or lacks
    ``email`` or ``api_token``.
    """
    try:
        response = secrets_client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        raise SourceError(f"source credentials secret '{secret_id}' cannot be read ({code})") from exc
    except BotoCoreError as exc:
        code = type(exc).__name__
        raise SourceError(f"source credentials secret '{secret_id}' cannot be read ({code})") from exc
    text = response.get("SecretString")
    if not isinstance(text, str):
        raise SourceError(f"source credentials secret '{secret_id}' has no SecretString; store JSON text")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise SourceError(f"source credentials secret '{secret_id}' is not JSON") from None
    if not isinstance(document, dict):
        raise SourceError(f"source credentials secret '{secret_id}' is not a JSON object")
    try:
        return SourceCredentials.model_validate(document)
    except ValidationError as exc:
        error = exc.errors(include_input=False)[0]
        # The input may be the token itself, so the reason names the field and the rule only.
        reason = "is missing" if error["type"] == "missing" else f"is invalid: {error['msg']}"
        reason = f"field '{error_location(error)}' {reason}"
        raise SourceError(f"source credentials secret '{secret_id}': {reason}", field="secret_id") from None
