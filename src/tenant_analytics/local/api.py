"""The local API Gateway: each HTTP request runs the real authorizer, then the real query handler,
with the proxy event API Gateway would send. Used by `serve`, `query` and the tests."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tenant_analytics import constants as c
from tenant_analytics.local.aws import ACCOUNT, REGION, invoke_handler

API_ID = "localapi"
STAGE = "local"


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


@dataclass
class LocalApiGateway:
    """Routes a request through the authorizer and the query Lambda, as the deployed REST API does."""

    lock: threading.Lock = field(default_factory=threading.Lock)

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
        with self.lock:
            raw, errored = invoke_handler(
                c.LAMBDA_HANDLERS["authorizer"],
                c.function_name("authorizer"),
                {"type": "TOKEN", "authorizationToken": auth_header or "", "methodArn": method_arn},
            )
        if errored:
            return _error(401, "unauthorized", "Unauthorized")
        policy = json.loads(raw)
        statement = policy["policyDocument"]["Statement"][0]
        if statement["Effect"] != "Allow":
            return _error(403, "forbidden", "User is not authorized to access this resource")
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
        with self.lock:
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
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path, _, query_string = self.path.partition("?")
            try:
                body = raw.decode() if raw else None
            except UnicodeDecodeError:
                response = _error(400, "invalid_input", "the request body is not UTF-8 text")
            else:
                query = parse_qs(query_string, keep_blank_values=True) or None
                response = gateway.handle(self.command, path, dict(self.headers.items()), body, query)
            payload = response.body.encode()
            self.send_response(response.status)
            for key, value in response.headers.items():
                if key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def __getattr__(self, name: str) -> Any:
            # every method (GET, POST, ... even unknown ones) reaches the gateway, which answers it
            if name.startswith("do_"):
                return self._forward
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)
