from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tenant_analytics.errors import SourceError
from tenant_analytics.sources.credentials import SourceCredentials, load_credentials

SECRET_ID = "tenant-analytics/source/acme"


@pytest.fixture
def secrets() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def test_credentials_are_read_from_the_tenant_secret(secrets: Any) -> None:
    # Given a secret holding an agent's email and API token
    secrets.create_secret(Name=SECRET_ID, SecretString=json.dumps({"email": "agent@acme.test", "api_token": "tok-1"}))
    # When the credentials are loaded
    credentials = load_credentials(secrets, SECRET_ID)
    # Then they give the basic auth pair for token access, and the token stays out of the repr
    assert credentials == SourceCredentials.model_validate({"email": "agent@acme.test", "api_token": "tok-1"})
    assert credentials.basic_auth == ("agent@acme.test/token", "tok-1")
    assert "tok-1" not in repr(credentials)


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("not json", "is not JSON"),
        ("[1]", "is not a JSON object"),
        (json.dumps({"email": "agent@acme.test"}), "field 'api_token' is missing"),
        (json.dumps({"email": 5, "api_token": "tok-1"}), "field 'email' is invalid"),
    ],
)
def test_bad_secret_names_the_secret_but_not_its_value(secrets: Any, secret: str, expected: str) -> None:
    # Given a secret that is not valid credentials
    secrets.create_secret(Name=SECRET_ID, SecretString=secret)
    # When it is loaded, Then the error names the secret and the fault, never the token
    with pytest.raises(SourceError) as raised:
        load_credentials(secrets, SECRET_ID)
    assert f"'{SECRET_ID}'" in str(raised.value) and expected in str(raised.value)
    assert "tok-1" not in str(raised.value)


def test_missing_secret_is_a_source_error_with_the_aws_code(secrets: Any) -> None:
    # Given no such secret, When it is loaded, Then the error names it and the AWS error code
    with pytest.raises(
        SourceError, match=r"'tenant-analytics/source/acme' cannot be read \(ResourceNotFoundException\)"
    ):
        load_credentials(secrets, SECRET_ID)
