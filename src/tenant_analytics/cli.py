"""`tenant-analytics`: the platform's command line, running against the local platform under
$TENANT_ANALYTICS_HOME (default ./.local)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from tenant_analytics.errors import InvalidInput, TenantAnalyticsError, one_line
from tenant_analytics.settings import database_url, get_settings, home_dir
from tenant_analytics.tenants.models import TENANT_ID_RULE, TenantStatus, Tier, is_tenant_id

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

    from tenant_analytics.local.platform import LocalPlatform


def _parse_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{value}' is not an ISO-8601 time (e.g. 2026-01-31T00:00:00Z)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"'{value}' is not a TCP port: use 1-65535 (0: any free port)")
    return port


def _tenant_id(value: str) -> str:
    if not is_tenant_id(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a tenant id: {TENANT_ID_RULE}")
    return value


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"'{value}' is not a positive whole number")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tenant-analytics", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the platform end to end on synthetic tenants")
    demo.add_argument("--serve", action="store_true", help="keep serving the query API afterwards")
    demo.add_argument("--port", type=_port, default=8080, help="the port --serve listens on (default 8080)")

    serve = sub.add_parser("serve", help="serve the query API on localhost")
    serve.add_argument("--port", type=_port, default=8080, help="default 8080; 0 picks a free port")

    tenants = sub.add_parser("tenants", help="register and list tenants").add_subparsers(dest="action", required=True)
    add = tenants.add_parser("add", help="register a tenant")
    add.add_argument("--id", required=True, dest="tenant_id")
    add.add_argument("--source-url", required=True, help="base URL of the tenant's source API (http or https)")
    add.add_argument("--tier", choices=[t.value for t in Tier])
    add.add_argument("--since", type=_parse_time, help="first export starts here, not later than now (default: all)")
    add.add_argument(
        "--credentials-secret",
        help="Secrets Manager secret holding the source's email and api_token, named tenant-analytics/sources/<...>",
    )
    tenants.add_parser("list", help="list tenants")
    get = tenants.add_parser("get", help="one tenant's record as JSON")
    get.add_argument("--id", required=True, dest="tenant_id")
    status = tenants.add_parser("set-status", help="suspend, reactivate or mark a tenant")
    status.add_argument("--id", required=True, dest="tenant_id")
    status.add_argument("--status", required=True, choices=[s.value for s in TenantStatus])

    run = sub.add_parser("run-hour", help="run one hourly pipeline over the registered tenants")
    run.add_argument(
        "--hour", help="the hour to run (ISO, on the hour, already complete; default the last complete hour)"
    )
    run.add_argument(
        "--tenants", help="comma-separated ids of registered tenants (default: every active or failed tenant)"
    )

    query = sub.add_parser("query", help="answer a query for a tenant (JSON of the query contract)")
    query.add_argument("--tenant", required=True, type=_tenant_id)
    query.add_argument("query", help="the query as JSON")

    sub.add_parser("openapi", help="print the query API's OpenAPI document")

    cdc = sub.add_parser("cdc", help="the change stream").add_subparsers(dest="action", required=True)
    replay = cdc.add_parser("replay", help="put a captured change stream on Kinesis and run the aggregator over it")
    replay.add_argument("file", type=Path, help="one change per line (JSON), or with --kpl base64 Kinesis data")
    replay.add_argument("--format", choices=["maxwell", "debezium", "auto"], default="auto")
    replay.add_argument("--kpl", action="store_true", help="lines are base64 Kinesis records (KPL-aggregated or not)")

    realtime = sub.add_parser("realtime", help="a tenant's 10-second bins of a change-stream metric")
    realtime.add_argument("--tenant", required=True, type=_tenant_id)
    realtime.add_argument("--metric", required=True)
    realtime.add_argument("--last", default="15m", help="how far back: 30s, 15m, 2h (at most 24h)")
    realtime.add_argument("--dimension")

    models = sub.add_parser("models", help="the incremental models (SQL files, refreshed in DAG order)")
    model_actions = models.add_subparsers(dest="action", required=True)
    model_actions.add_parser("list", help="each model: domain, inputs and grain, in dependency order")
    validate = model_actions.add_parser(
        "validate",
        help="check model files against both compilers; exit 1 naming each file and construct, exit 2 when the"
        " folder does not exist or holds no model files",
    )
    validate.add_argument(
        "--dir", type=Path, help="a folder of <domain>/<model>.sql files (default: the packaged ones)"
    )
    refresh = model_actions.add_parser("refresh", help="refresh the models of every store now")
    refresh.add_argument("--full", action="store_true", help="recompute instead of applying changes")
    refresh.add_argument(
        "--tenant", action="append", type=_tenant_id, help="only this registered tenant's changes (repeatable)"
    )
    log = model_actions.add_parser("log", help="the latest refreshes of every PostgreSQL store")
    log.add_argument("--limit", type=_positive_int, default=20, help="refreshes shown per store (default 20)")

    token = sub.add_parser("token", help="print a development token for the local API")
    token.add_argument("--tenant", required=True, type=_tenant_id)
    token.add_argument("--ttl", type=_positive_int, default=3600, help="seconds until it expires (default 3600)")
    return parser


def _print_tenants(rows: list[dict[str, Any]]) -> None:
    cols = ("tenant_id", "tier", "store", "status", "size_rows", "data_version", "loaded_through", "last_error")
    print("  ".join(f"{c:<14}" for c in cols).rstrip())
    for row in rows:
        print("  ".join(f"{row.get(c) if row.get(c) is not None else '-'!s:<14}" for c in cols).rstrip())


def _api_error(response: Any) -> int:
    """Print an API error as one line; return the exit code."""
    error = response.json().get("error", {})
    field = f" (field '{error['field']}')" if error.get("field") else ""
    print(f"error: {error.get('message', response.body)}{field}", file=sys.stderr)
    return 2


@contextmanager
def _cdc_format(fmt: str) -> Iterator[None]:
    """Run the aggregator with the given source format (the CDC_SOURCE_FORMAT setting of the function)."""
    from tenant_analytics.cdc import runtime as cdc_runtime
    from tenant_analytics.constants import ENV_CDC_SOURCE_FORMAT

    with mock.patch.dict(os.environ, {ENV_CDC_SOURCE_FORMAT: fmt}):
        cdc_runtime.reset()
        try:
            yield
        finally:
            cdc_runtime.reset()


def _listen(port: int) -> ThreadingHTTPServer:
    """The query API's server on 127.0.0.1:``port``, bound before anything slow starts; InvalidInput if the port
    cannot be had."""
    from tenant_analytics.local.api import LocalApiGateway, make_server

    try:
        return make_server(LocalApiGateway(), port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InvalidInput(
            f"cannot listen on 127.0.0.1:{port}: {reason}; choose another --port (0: any free port)", field="port"
        ) from exc


def _serve(server: ThreadingHTTPServer) -> None:
    print(f"query API on http://127.0.0.1:{server.server_address[1]}/v1/query (Ctrl-C stops)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def _keep_serving(server: ThreadingHTTPServer) -> Callable[[Any, Any], None]:
    """The demo's ``keep_serving``: serve the API on ``server`` once the demo has run."""
    return lambda platform, gateway: _serve(server)


@contextmanager
def _platform(home: Path, *, persist: bool) -> Iterator[LocalPlatform]:
    """The local platform under ``home``; InvalidInput naming DATABASE_URL when its server cannot be reached."""
    import psycopg

    from tenant_analytics.local.platform import local_platform

    with ExitStack() as stack:
        try:
            platform = stack.enter_context(local_platform(home, persist=persist))
        except psycopg.OperationalError as exc:
            if database_url() is None:
                raise  # the embedded server: not something the caller set
            raise InvalidInput(
                f"cannot connect to the PostgreSQL server of environment variable DATABASE_URL: {one_line(exc)}",
                field="DATABASE_URL",
            ) from exc
        yield platform


def _run_input(hour: str | None, tenants: str | None) -> dict[str, Any]:
    """The hourly run's input from --hour and --tenants; InvalidInput (as the plan step would) for a bad hour,
    an empty tenant list or a string that is not a tenant id. Whether the tenants can run is checked later."""
    from tenant_analytics.pipeline.plan import parse_hour

    payload: dict[str, Any] = {}
    if hour is not None:
        parse_hour(hour, datetime.now(UTC))
        payload["hour"] = hour
    if tenants is not None:
        ids = [t.strip() for t in tenants.split(",") if t.strip()]
        if not ids:
            raise InvalidInput(
                f"--tenants {tenants!r} names no tenant: give comma-separated tenant ids, or leave --tenants out to"
                " run every active or failed tenant",
                field="tenants",
            )
        bad = [t for t in ids if not is_tenant_id(t)]
        if bad:
            raise InvalidInput(f"--tenants: {bad[0]!r} is not a tenant id: {TENANT_ID_RULE}", field="tenants")
        payload["tenants"] = ids
    return payload


def _run_failure(execution: dict[str, Any]) -> str:
    """A run that did not succeed, in one line: its error and message (a function's cause is JSON that also
    holds its stack trace, kept in the logs)."""
    cause = str(execution.get("cause") or "").strip()
    try:
        detail = json.loads(cause)
    except ValueError:
        detail = None
    if isinstance(detail, dict) and detail.get("errorMessage"):
        message = str(detail["errorMessage"])
    else:
        message = cause.splitlines()[0] if cause else "no cause given"
    return f"the run {execution['status']}: {execution.get('error') or 'unknown error'}: {message}"


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _models_offline(args: argparse.Namespace) -> int:
    """``models list`` and ``models validate``: read the model files only, no store needed."""
    from tenant_analytics.models import load_project, validate_project

    if args.action == "validate":
        directory = args.dir
        if directory is not None and not directory.is_dir():
            raise InvalidInput(f"no such folder: {directory}", field="dir")
        findings = validate_project(directory)
        for finding in findings:
            print(f"error: {finding.message}", file=sys.stderr)
        if findings:
            return 1
        project = load_project(directory)
        print(f"{len(project.models)} model(s) valid: PostgreSQL summary tables and incremental Redshift views")
        return 0
    project = load_project()
    print(f"{'model':<25} {'domain':<10} {'inputs':<37} grain")
    for model in project.models:
        print(f"{model.name:<25} {model.domain:<10} {', '.join(model.inputs):<37} {', '.join(model.grain)}")
    return 0


def _print_refreshes(store_id: str, records: list[Any]) -> None:
    for r in records:
        scope = ",".join(r.tenant_scope) if r.tenant_scope else "all tenants"
        warning = f"  ({r.warning})" if r.warning else ""
        print(
            f"{store_id:<11} {r.model:<28} {r.mode:<11} {r.rows_changed:>8} rows  {r.duration_s * 1000:>8.1f} ms  "
            f"{scope}{warning}"
        )


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    home = home_dir()
    if args.command == "demo":
        from tenant_analytics.local.demo import run_demo

        with ExitStack() as stack:
            # listening from the start: a port in use fails now, not after the demo has run
            keep = _keep_serving(stack.enter_context(_listen(args.port))) if args.serve else None
            run_demo(home / "demo", keep_serving=keep)
        return 0

    if args.command == "openapi":
        from lambdas.query.handler import openapi_document

        print(openapi_document())
        return 0

    if args.command == "models" and args.action in ("list", "validate"):
        return _models_offline(args)

    if args.command == "cdc" and args.file.is_dir():
        raise InvalidInput(f"{args.file} is a directory; give a file with one captured change per line", field="file")
    if args.command == "cdc" and not args.file.is_file():
        raise InvalidInput(f"no such file: {args.file}", field="file")
    payload = _run_input(args.hour, args.tenants) if args.command == "run-hour" else {}

    if args.command == "serve":
        with _listen(args.port) as server, _platform(home, persist=False):
            _serve(server)
        return 0

    # Only commands that change the local account's state save it (and so need the home to themselves).
    changes_state = args.command == "run-hour" or (args.command == "tenants" and args.action in ("add", "set-status"))
    with _platform(home, persist=changes_state) as platform:
        if args.command == "tenants" and args.action == "add":
            tenant = platform.add_tenant(
                args.tenant_id,
                args.source_url,
                tier=Tier(args.tier) if args.tier else None,
                since=args.since,
                credentials_secret=args.credentials_secret,
            )
            print(f"registered tenant '{tenant.tenant_id}' on {tenant.tier.value} store {tenant.store}")
        elif args.command == "tenants" and args.action == "get":
            print(platform.registry.get(args.tenant_id).model_dump_json(indent=2))
        elif args.command == "tenants" and args.action == "set-status":
            tenant = platform.registry.set_status(args.tenant_id, TenantStatus(args.status))
            print(f"tenant '{tenant.tenant_id}' is now {tenant.status.value}")
        elif args.command == "tenants":
            _print_tenants([t.model_dump(mode="json") for t in platform.registry.list()])
        elif args.command == "run-hour":
            from tenant_analytics.pipeline.plan import select_tenants

            if "tenants" in payload:
                select_tenants(payload["tenants"], platform.registry)  # registered and runnable, before a run starts
            execution = platform.run_hour(payload)
            if execution["status"] != "SUCCEEDED":
                raise InvalidInput(_run_failure(execution))
            print(json.dumps(execution["output"], indent=2))
            failed = [f for b in execution["output"].get("batches", []) for f in b.get("failed", [])]
            for failure in failed:
                print(
                    f"error: tenant '{failure['tenant_id']}' failed at {failure['step']}: {failure['error']}",
                    file=sys.stderr,
                )
            return 1 if failed else 0
        elif args.command == "models" and args.action == "refresh":
            from tenant_analytics.pipeline import runtime

            for tenant_id in args.tenant or []:
                platform.registry.get(tenant_id)  # UnknownTenant: its changes cannot be refreshed
            for store_id in sorted(get_settings().stores):
                store = runtime.store_opener()(store_id)
                _print_refreshes(store_id, store.refresh_models(args.tenant, full=args.full))
        elif args.command == "models":
            from tenant_analytics.pipeline import runtime
            from tenant_analytics.stores.postgres import PostgresStore

            for store_id in sorted(get_settings().stores):
                store = runtime.store_opener()(store_id)
                if isinstance(store, PostgresStore):
                    _print_refreshes(store_id, store.refresh_log(args.limit))
        elif args.command == "query":
            try:
                document = json.loads(args.query)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"the query is not valid JSON: {exc.msg} at character {exc.pos}") from exc
            except RecursionError as exc:
                raise InvalidInput(
                    "the query nests too deeply: it must be a JSON object of the query contract"
                ) from exc
            if not isinstance(document, dict):
                raise InvalidInput(
                    f'the query must be a JSON object of the query contract (like {{"dataset": ...}}), got'
                    f" {_json_type(document)}"
                )
            response = platform.call_api(args.tenant, "POST", "/v1/query", body=document)
            if response.status != 200:
                return _api_error(response)
            print(json.dumps(response.json(), indent=2))
        elif args.command == "cdc":
            from tenant_analytics.local.stream import replay_to_stream

            with _cdc_format(args.format):
                replay = replay_to_stream(args.file, kpl=args.kpl)
            print(
                f"replayed {replay.records} records from {args.file} through {replay.stream}: "
                f"{replay.batches} batch(es), {replay.redelivered} redelivered, {replay.given_up} given up"
            )
            for code, count in sorted(replay.rejected.items()):
                print(f"  {count} record(s) to the failure queue: {code}")
        elif args.command == "realtime":
            params = {"metric": args.metric, "last": args.last}
            if args.dimension:
                params["dimension"] = args.dimension
            response = platform.call_api(args.tenant, "GET", "/v1/realtime", query=params)
            if response.status != 200:
                return _api_error(response)
            print(json.dumps(response.json(), indent=2))
        elif args.command == "token":
            print(platform.token(args.tenant, ttl_seconds=args.ttl))
    return 0


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, non-zero exit codes."""
    try:
        code = run(sys.argv[1:] if argv is None else argv)
    except TenantAnalyticsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
