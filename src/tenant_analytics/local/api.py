"""The local API Gateway: each HTTP request runs the real authorizer, then the real query handler,
with the proxy event API Gateway would send. Used by `serve`, `query` and the tests.

Concurrency: requests are served by concurrent threads (one per keep-alive connection) and the authorizer
runs in each of them: it verifies a token against keys loaded once and, when API keys are required, reads
the registry through a locked per-process copy. The query function runs one invocation at a time in the
process, like a single warm container: its Powertools resolver keeps the current request at class level
(``BaseRouter.current_event``, and the metrics set), so two invocations in one process could answer one
request with the other's event, and so with the other's tenant.
"""

from __future__ import annotations

import importlib
import json
import logging
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tenant_analytics import constants as c
from tenant_analytics.local.aws import ACCOUNT, REGION, LocalLambdaContext, invoke_handler
from tenant_analytics.local.aws import _invoke_lock as _one_invocation_at_a_time
from tenant_analytics.settings import get_settings

API_ID = "localapi"
STAGE = "local"
_log = logging.getLogger(__name__)
IDLE_CONNECTION_SECONDS = 60  # an idle keep-alive connection is closed after this long


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def _error(status: int, code: str, message: str) -> ApiResponse:
    return ApiResponse(
        status, {"Content-Type": "application/json"}, json.dumps({"error": {"code": code, "message": message}})
    )


def _authorize(token: str, method_arn: str) -> tuple[int, dict[str, Any] | None]:
    """Run the authorizer as API Gateway does: (200, its policy), (401, None) for "Unauthorized", else (500, None).

    Called directly rather than through ``invoke_handler``, whose capture of stdout swaps ``sys.stdout`` for the
    whole process and so cannot run in several threads at once; the authorizer prints nothing.
    """
    module_name, attr = c.LAMBDA_HANDLERS["authorizer"].rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), attr)
    event = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
    try:
        policy: dict[str, Any] = handler(event, LocalLambdaContext(function_name=c.function_name("authorizer")))
    except Exception as exc:
        if str(exc) == "Unauthorized":
            return 401, None
        _log.warning("the authorizer failed", exc_info=True)
        return 500, None
    return 200, policy


@dataclass
class LocalApiGateway:
    """Routes a request through the authorizer and the query Lambda, as the deployed REST API does."""

    def handle(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: str | None,
        query: dict[str, list[str]] | None = None,
    ) -> ApiResponse:
        method_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}/{method}{path}"
        auth_header = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        status, policy = _authorize(auth_header or "", method_arn)
        if status == 401:
            return _error(401, "unauthorized", "Unauthorized")
        if policy is None:
            return _error(500, "authorizer_error", "the authorizer failed; see its log")
        statement = policy["policyDocument"]["Statement"][0]
        if statement["Effect"] != "Allow":
            return _error(403, "forbidden", "User is not authorized to access this resource")
        if get_settings().api_keys_required and not policy.get("usageIdentifierKey"):
            # API key source AUTHORIZER: a method that requires a key refuses a caller whose authorizer gave none
            return _error(403, "forbidden", "Forbidden: the tenant has no API key")
        # API Gateway passes the authorizer's context, not anything the caller sent, as requestContext.authorizer
        event = {
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": API_ID,
                "stage": STAGE,
                "httpMethod": method,
                "path": f"/{STAGE}{path}",
                "resourcePath": path,
                "requestId": str(uuid.uuid4()),
                "identity": {"sourceIp": "127.0.0.1"},
                "authorizer": {**policy.get("context", {}), "principalId": policy["principalId"]},
            },
            "body": body,
            "isBase64Encoded": False,
        }
        with _one_invocation_at_a_time:  # per process, not per gateway: see the module docstring
            raw, errored = invoke_handler(c.LAMBDA_HANDLERS["query"], c.function_name("query"), event)
        if errored:
            return _error(502, "internal_error", "Internal server error")
        result = json.loads(raw)
        # API Gateway merges both header maps of a proxy response
        out_headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        out_headers.update({k: ", ".join(map(str, v)) for k, v in (result.get("multiValueHeaders") or {}).items()})
        return ApiResponse(int(result["statusCode"]), out_headers, result.get("body") or "")


def make_server(gateway: LocalApiGateway, port: int) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:``port`` (0 picks a free port) that forwards every request to ``gateway``."""

    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as API Gateway offers: a client's requests reuse one connection (and one server thread).
        protocol_version = "HTTP/1.1"
        timeout = IDLE_CONNECTION_SECONDS
        disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

        def _forward(self) -> None:
            if "chunked" in str(self.headers.get("Transfer-Encoding") or "").lower():
                self.close_connection = True  # the body's end is unknown: answer, then drop the connection
                response = _error(411, "length_required", "send the body with a Content-Length header")
            else:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                response = self._answer(raw)
            payload = response.body.encode()
            self.send_response(response.status)
            for key, value in response.headers.items():
                if key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _answer(self, raw: bytes) -> ApiResponse:
            path, _, query_string = self.path.partition("?")
            try:
                body = raw.decode() if raw else None
            except UnicodeDecodeError:
                return _error(400, "invalid_input", "the request body is not UTF-8 text")
            query = parse_qs(query_string, keep_blank_values=True) or None
            return gateway.handle(self.command, path, dict(self.headers.items()), body, query)

        def __getattr__(self, name: str) -> Any:
            # every method (GET, POST, ... even unknown ones) reaches the gateway, which answers it
            if name.startswith("do_"):
                return self._forward
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)
