"""Local AWS: moto with the real state machine executed, Lambda invokes dispatched to the real handlers,
and Glue job runs executed by local Spark with the same script and arguments.

Only this module knows that the AWS APIs are local. Because moto keeps its state in memory, the registry,
cursors and buckets are saved under the local home when the context ends and restored when it starts, so
separate CLI calls share one platform.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from tenant_analytics import constants as c
from tenant_analytics.aws import clients
from tenant_analytics.settings import get_settings
from tenant_analytics.transforms.manifest import TransformManifest

REGION = "us-east-1"
ACCOUNT = "123456789012"
ASL_DIR = Path(__file__).resolve().parents[3] / "state_machines"
_invoke_lock = threading.Lock()
_log = logging.getLogger(__name__)


@dataclass
class LocalLambdaContext:
    """The attributes of a Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.monotonic() + 900)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


_log_dir: Path | None = None


def _set_log_dir(path: Path | None) -> Path | None:
    """Where functions' logs go from now on (``home/logs``); returns the previous folder."""
    global _log_dir
    previous, _log_dir = _log_dir, path
    return previous


@contextmanager
def _function_log(function_name: str) -> Iterator[Any]:
    if _log_dir is None:
        yield sys.stderr
        return
    _log_dir.mkdir(parents=True, exist_ok=True)
    with (_log_dir / f"{function_name}.log").open("a", encoding="utf-8") as log:
        yield log


@contextmanager
def _engine_log(log_dir: Path) -> Iterator[None]:
    """Send the local state machine engine's errors to ``log_dir``/stepfunctions.log, not the console.

    It logs an error for every exception a state raises, also those the definition handles (a Choice testing
    ``IsPresent`` on a missing path, a Catch that routes a failure): on the console they would read as failures of
    a run that succeeded. A run that fails says so itself; its states' full causes are in the file.
    """
    engine = logging.getLogger("moto.stepfunctions")
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_dir / "stepfunctions.log", encoding="utf-8", delay=True)
    propagate = engine.propagate
    engine.addHandler(handler)
    engine.propagate = False
    try:
        yield
    finally:
        engine.removeHandler(handler)
        engine.propagate = propagate
        handler.close()


class _CurrentStdout:
    """A stream that writes wherever ``sys.stdout`` points at the time: a function's log file while it runs."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_CURRENT_STDOUT = _CurrentStdout()


def _follow_stdout() -> None:
    """Point the functions' Powertools loggers at the current stdout: a Logger binds ``sys.stdout`` when its handler
    module is imported, which is outside the redirection of a function's output to its log file."""
    for logger in list(logging.Logger.manager.loggerDict.values()):
        handler = getattr(logger, "powertools_handler", None)
        if isinstance(handler, logging.StreamHandler) and handler.stream is not _CURRENT_STDOUT:
            handler.setStream(_CURRENT_STDOUT)


def invoke_handler(handler_path: str, function_name: str, event: Any) -> tuple[str, bool]:
    """Call the real handler; return (payload JSON, errored) the way Lambda reports a function error."""
    module_name, attr = handler_path.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), attr)
    _follow_stdout()
    try:
        # What a function prints (its metrics, warnings) goes to its log file, as on AWS to CloudWatch Logs.
        with _function_log(function_name) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            result = handler(event, LocalLambdaContext(function_name=function_name))
    except Exception as exc:  # reported as a function error, exactly as Lambda does
        payload = {
            "errorMessage": getattr(exc, "message", None) or str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_exception(exc)[-5:],
        }
        return json.dumps(payload), True
    return json.dumps(result, default=str), False


def _local_invoke(
    self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes:
    """Replacement of moto's docker-less Lambda invoke: run the handler named by the function's Handler."""
    fn = self.get_function(function_name, qualifier)
    payload = json.loads(body) if body else {}
    with _invoke_lock:  # handlers share cached clients and stores; one invoke at a time, like one container
        result, errored = invoke_handler(fn.handler, fn.function_name, payload)
    if errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    return result.encode()


def _file_uri(path: Path) -> str:
    # Spark takes paths verbatim: Path.as_uri() would percent-encode the '=' of partition folders.
    return "file://" + str(path.resolve())


def _s3_split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class LocalSparkJobRunner:
    """Runs a Glue job run's script with local Spark: S3 inputs are staged to disk and outputs uploaded back."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir

    def run(self, script_location: str, arguments: dict[str, str]) -> None:
        """Run the job script; raise on failure (the caller marks the job run FAILED with the message)."""
        from tenant_analytics.local.spark import local_spark

        s3 = boto3.client("s3", region_name=REGION)
        run_dir = Path(tempfile.mkdtemp(prefix="jobrun-", dir=self.work_dir))
        try:
            local_args = dict(arguments)
            staged = _StagedManifest.stage(s3, arguments["--manifest"], run_dir)
            local_args["--manifest"] = staged.local_uri
            out_dir = run_dir / "output"
            local_args["--output"] = _file_uri(out_dir)
            module = importlib.import_module(f"glue_jobs.{Path(script_location).stem}")
            argv = [script_location] + [x for kv in local_args.items() for x in kv]
            local_spark()
            module.main(argv)
            _upload_tree(s3, out_dir, arguments["--output"])
            staged.upload_history(s3)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)


def _upload_tree(s3: Any, folder: Path, uri: str, skip: set[Path] | None = None) -> None:
    """Upload the data files under ``folder`` to the S3 prefix ``uri`` (Spark's marker files left out)."""
    bucket, prefix = _s3_split(uri)
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith((".", "_")) and (skip is None or path not in skip):
            s3.upload_file(str(path), bucket, prefix.rstrip("/") + "/" + path.relative_to(folder).as_posix())


@dataclass
class _StagedManifest:
    """A manifest whose files were copied from S3 to disk, rewritten to name the copies."""

    local_uri: str
    history_dir: Path | None
    history_root: str | None
    staged: dict[Path, str]  # local copy -> the S3 URI it was copied from

    @classmethod
    def stage(cls, s3: Any, manifest_uri: str, run_dir: Path) -> _StagedManifest:
        bucket, key = _s3_split(manifest_uri)
        manifest = TransformManifest.from_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
        root = run_dir / "s3"
        staged: dict[Path, str] = {}

        def local_path(uri: str) -> Path:
            b, k = _s3_split(uri)
            return root / b / k

        def stage_files(files: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
            out: dict[str, dict[str, list[str]]] = {}
            for tenant_id, streams in files.items():
                out[tenant_id] = {}
                for stream, uris in streams.items():
                    out[tenant_id][stream] = []
                    for uri in uris:
                        target = local_path(uri)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        s3.download_file(*_s3_split(uri), str(target))
                        staged[target] = uri
                        out[tenant_id][stream].append(_file_uri(target))
            return out

        raw_root = local_path(manifest.raw_root)
        raw_root.mkdir(parents=True, exist_ok=True)
        history_dir = local_path(manifest.history_root) if manifest.history_root else None
        if history_dir is not None:
            history_dir.mkdir(parents=True, exist_ok=True)
        local = TransformManifest(
            raw_root=_file_uri(raw_root) + "/",
            hour=manifest.hour,
            batch_id=manifest.batch_id,
            tenants=stage_files(manifest.tenants),
            history_root=_file_uri(history_dir) + "/" if history_dir else None,
            history=stage_files(manifest.history),
            compact_after_files=manifest.compact_after_files,
        )
        path = run_dir / "manifest.json"
        path.write_text(local.to_json())
        return cls(_file_uri(path), history_dir, manifest.history_root, staged)

    def upload_history(self, s3: Any) -> None:
        """Upload the history files the run wrote (the staged ones are in S3 already) and delete from S3 those it
        deleted (a compaction), as the run would have done on S3 itself."""
        if self.history_dir is None or self.history_root is None:
            return
        _upload_tree(s3, self.history_dir, self.history_root, skip=set(self.staged))
        for path, uri in self.staged.items():
            if path.is_relative_to(self.history_dir) and not path.exists():
                bucket, key = _s3_split(uri)
                s3.delete_object(Bucket=bucket, Key=key)


@dataclass
class LocalAws:
    """An active local AWS account with the platform's resources; see ``local_aws``."""

    home: Path
    sfn: Any
    state_machine_arn: str
    spark_runs: LocalSparkJobRunner

    def run_state_machine(self, name: str, payload: dict[str, Any], timeout_s: float = 600) -> dict[str, Any]:
        """Start an execution, wait for it (bounded) and return describe_execution's answer."""
        arn = self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload))[
            "executionArn"
        ]
        deadline = time.monotonic() + timeout_s
        while True:
            desc: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
            if desc["status"] != "RUNNING":
                return desc
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {name} still RUNNING after {timeout_s:.0f} s")
            time.sleep(0.05)


def _fill_asl(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    if "${" in text:
        start = text.index("${")
        raise ValueError(f"state machine definition has an unfilled placeholder near {text[start : start + 40]!r}")
    return text


def _zip_stub() -> bytes:
    # moto requires a code package; the handler it names is imported from the project instead.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("README.txt", "code is dispatched to the project's lambdas package")
    return buf.getvalue()


def _create_resources(home: Path) -> tuple[Any, str]:
    settings = get_settings()
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName=settings.tenants_table,
        KeySchema=[{"AttributeName": "tenant_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "tenant_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.create_table(
        TableName=settings.cursors_table,
        KeySchema=[{"AttributeName": "tenant_id", "KeyType": "HASH"}, {"AttributeName": "stream", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "tenant_id", "AttributeType": "S"},
            {"AttributeName": "stream", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.create_table(
        TableName=c.CACHE_TABLE,
        KeySchema=[{"AttributeName": c.CACHE_TABLE_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": c.CACHE_TABLE_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (settings.raw_bucket, settings.curated_bucket, settings.artifacts_bucket):
        s3.create_bucket(Bucket=bucket)
    role_arn = boto3.client("iam", region_name=REGION).create_role(
        RoleName="local-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    glue = boto3.client("glue", region_name=REGION)
    glue.create_job(
        Name=settings.transform_job_name,
        Role=role_arn,
        Command={
            "Name": "glueetl",
            "ScriptLocation": f"s3://{settings.artifacts_bucket}/{c.GLUE_SCRIPTS_PREFIX}/transform_support.py",
            "PythonVersion": "3",
        },
        GlueVersion="5.0",
        ExecutionProperty={"MaxConcurrentRuns": 100},
    )
    boto3.client("sqs", region_name=REGION).create_queue(QueueName=c.CDC_FAILURE_QUEUE)
    emr_application_id = boto3.client("emr-serverless", region_name=REGION).create_application(
        name=c.EMR_APPLICATION, releaseLabel="emr-7.5.0", type="SPARK"
    )["applicationId"]
    lam = boto3.client("lambda", region_name=REGION)
    arns: dict[str, str] = {}
    for logical, handler in c.LAMBDA_HANDLERS.items():
        arns[logical] = lam.create_function(
            FunctionName=c.function_name(logical),
            Runtime="python3.11",
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": _zip_stub()},
            Timeout=900,
        )["FunctionArn"]
    definition = _fill_asl(
        (ASL_DIR / c.ASL_HOURLY).read_text(),
        {
            "PlanFunctionArn": arns["plan"],
            "ExportFunctionArn": arns["export"],
            "LoadFunctionArn": arns["load"],
            "PublishFunctionArn": arns["publish"],
            "CollectFunctionArn": arns["collect"],
            "RefreshFunctionArn": arns["refresh"],
            "TransformJobName": settings.transform_job_name,
            "EmrApplicationId": emr_application_id,
            "EmrJobRoleArn": role_arn,
            "EmrEntryPoint": f"s3://{settings.artifacts_bucket}/{c.GLUE_SCRIPTS_PREFIX}/transform_support.py",
            "EmrSparkSubmitParameters": f"--py-files s3://{settings.artifacts_bucket}/{c.GLUE_SCRIPTS_PREFIX}/src.zip",
        },
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(name=c.HOURLY_STATE_MACHINE, definition=definition, roleArn=role_arn)[
        "stateMachineArn"
    ]
    return sfn, arn


def _recase(value: Any, first: Callable[[str], str]) -> Any:
    """Change the first letter of every key (recursively): the AWS SDK integration's PascalCase and back."""
    if isinstance(value, dict):
        return {first(k[:1]) + k[1:]: _recase(v, first) for k, v in value.items()}
    if isinstance(value, list):
        return [_recase(v, first) for v in value]
    return value


def _sdk_integration_patch() -> Any:
    """moto's aws-sdk integration passes parameters through as written; Step Functions spells them in PascalCase
    and answers in PascalCase. For EMR Serverless, whose API is camelCase, translate both ways, as AWS does."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )

    original = StateTaskServiceAwsSdk._eval_service_task

    def eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        if self.resource.api_name != "emrserverless":
            original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
            return
        client = boto3.client("emr-serverless", region_name=REGION)
        action = self._get_boto_service_action()
        response = getattr(client, action)(**_recase(normalised_parameters, str.lower)) or {}
        response.pop("ResponseMetadata", None)
        env.stack.append(_recase(response, str.upper))

    return mock.patch.object(StateTaskServiceAwsSdk, "_eval_service_task", eval_service_task)


def _pairs(arguments: list[str]) -> dict[str, str]:
    """``["--a", "1", "--b", "2"]`` -> ``{"--a": "1", "--b": "2"}`` (spark-submit entry point arguments)."""
    if len(arguments) % 2:
        raise ValueError(f"entry point arguments must come in --name value pairs, got {arguments}")
    return dict(zip(arguments[::2], arguments[1::2], strict=True))


def _job_run_patches(runner: LocalSparkJobRunner) -> list[Any]:
    from moto.emrserverless.models import EMRServerlessBackend
    from moto.glue.models import FakeJob, FakeJobRun

    original_start = FakeJob.start_job_run
    original_as_dict = FakeJobRun.as_dict

    def start_job_run(self: Any, **kwargs: Any) -> str:
        run_id: str = original_start(self, **kwargs)
        job_run = next(r for r in self.job_runs if r.job_run_id == run_id)
        try:
            runner.run(self.command["ScriptLocation"], dict(job_run.arguments or {}))
        except Exception as exc:  # the job run fails, as on Glue; the state machine sees FAILED
            _log.warning("local Spark job run %s failed", run_id, exc_info=True)
            job_run.status = "FAILED"
            job_run.local_error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:500]}"
        else:
            job_run.status = "SUCCEEDED"
        return run_id

    def as_dict(self: Any) -> dict[str, Any]:
        body: dict[str, Any] = original_as_dict(self)
        if getattr(self, "local_error", None):
            body["ErrorMessage"] = self.local_error
        return body

    original_emr_start = EMRServerlessBackend.start_job_run

    def emr_start_job_run(self: Any, **kwargs: Any) -> Any:
        job_run = original_emr_start(self, **kwargs)
        submit = (kwargs.get("job_driver") or {}).get("sparkSubmit") or {}
        try:
            runner.run(str(submit["entryPoint"]), _pairs(list(submit.get("entryPointArguments") or [])))
        except Exception as exc:  # the job run fails, as on EMR Serverless
            _log.warning("local Spark job run %s failed", job_run.id, exc_info=True)
            job_run.state = "FAILED"
            job_run.state_details = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:500]}"
        else:
            job_run.state = "SUCCESS"
        return job_run

    return [
        mock.patch.object(FakeJob, "start_job_run", start_job_run),
        mock.patch.object(FakeJobRun, "as_dict", as_dict),
        mock.patch.object(EMRServerlessBackend, "start_job_run", emr_start_job_run),
    ]


class StateSnapshot:
    """Saves and restores the moto account's tables and buckets under the local home."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def restore(self) -> None:
        settings = get_settings()
        ddb = boto3.client("dynamodb", region_name=REGION)
        for table in (settings.tenants_table, settings.cursors_table):
            path = self.root / "dynamodb" / f"{table}.json"
            if path.exists():
                for item in json.loads(path.read_text()):
                    ddb.put_item(TableName=table, Item=item)
        s3 = boto3.client("s3", region_name=REGION)
        s3_root = self.root / "s3"
        for bucket in (settings.raw_bucket, settings.curated_bucket, settings.artifacts_bucket):
            base = s3_root / bucket
            if base.exists():
                for path in base.rglob("*"):
                    if path.is_file():
                        s3.upload_file(str(path), bucket, path.relative_to(base).as_posix())

    def save(self) -> None:
        settings = get_settings()
        ddb = boto3.client("dynamodb", region_name=REGION)
        (self.root / "dynamodb").mkdir(parents=True, exist_ok=True)
        for table in (settings.tenants_table, settings.cursors_table):
            items: list[dict[str, Any]] = []
            for page in ddb.get_paginator("scan").paginate(TableName=table):
                items.extend(page["Items"])
            tmp = self.root / "dynamodb" / f"{table}.json.tmp"
            tmp.write_text(json.dumps(items))
            tmp.replace(self.root / "dynamodb" / f"{table}.json")
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (settings.raw_bucket, settings.curated_bucket, settings.artifacts_bucket):
            base = self.root / "s3" / bucket
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    target = base / obj["Key"]
                    if not target.exists() or target.stat().st_size != obj["Size"]:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        s3.download_file(bucket, obj["Key"], str(target))


def local_environment(
    home: Path, store_dsns: dict[str, tuple[str, str]], query_dsns: dict[str, str] | None = None
) -> dict[str, str]:
    """Environment of the local account: fake credentials, region, and the stores' DSNs: the writers' (a
    superuser) and, where ``query_dsns`` has one, the query login's, which tenant queries use as on AWS."""
    stores: dict[str, dict[str, str]] = {
        store_id: {"engine": "postgres", "tier": tier, "dsn": dsn} for store_id, (tier, dsn) in store_dsns.items()
    }
    for store_id, query_dsn in (query_dsns or {}).items():
        stores[store_id]["query_dsn"] = query_dsn
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "TenantAnalytics",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        c.ENV_STORES: json.dumps(stores),
        c.ENV_CLUSTER_BUDGETS: json.dumps({"poll_seconds": 0}),
        c.ENV_CACHE_TABLE: c.CACHE_TABLE,
        c.ENV_CDC_FAILURE_QUEUE_URL: f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{c.CDC_FAILURE_QUEUE}",
    }


@contextmanager
def local_aws(
    home: Path,
    store_dsns: dict[str, tuple[str, str]],
    *,
    persist: bool = True,
    query_dsns: dict[str, str] | None = None,
) -> Iterator[LocalAws]:
    """Start the local account (moto), create the platform's resources, restore saved state, and yield it.

    ``store_dsns`` maps store id -> (tier, PostgreSQL URL); ``query_dsns`` store id -> the URL tenant queries log
    in with (see ``local_environment``). With ``persist`` the state is saved on exit.
    """
    from moto import mock_aws
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from tenant_analytics.cdc import runtime as cdc_runtime
    from tenant_analytics.stores.factory import close_all

    home.mkdir(parents=True, exist_ok=True)
    work = home / "work"
    work.mkdir(exist_ok=True)
    runner = LocalSparkJobRunner(work)
    with ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, local_environment(home, store_dsns, query_dsns)))
        get_settings.cache_clear()
        stack.callback(get_settings.cache_clear)
        clients.reset()
        stack.callback(clients.reset)
        cdc_runtime.reset()
        stack.callback(cdc_runtime.reset)
        stack.callback(close_all)
        stack.enter_context(
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        )
        stack.enter_context(mock.patch.object(LambdaSimpleBackend, "invoke", _local_invoke))
        for patch in _job_run_patches(runner):
            stack.enter_context(patch)
        stack.enter_context(_sdk_integration_patch())
        # moto's execution engine logs every state at INFO; keep the console for the platform's own output
        logging.getLogger("moto").setLevel(logging.ERROR)
        stack.enter_context(_engine_log(home / "logs"))
        stack.callback(_set_log_dir, _set_log_dir(home / "logs"))
        sfn, arn = _create_resources(home)
        snapshot = StateSnapshot(home / "aws")
        snapshot.restore()
        yield LocalAws(home=home, sfn=sfn, state_machine_arn=arn, spark_runs=runner)
        if persist:
            snapshot.save()
