"""The CLI's checks of its flags and arguments, made before the local platform starts (no AWS, no database)."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from tenant_analytics import cli
from tenant_analytics.errors import InvalidInput
from tenant_analytics.local.aws import _engine_log


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TENANT_ANALYTICS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def refused_by_the_parser(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI; assert argparse refused the arguments (exit 2); return its error line."""
    with pytest.raises(SystemExit) as exit_:
        cli.run(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--port", "70000"], "argument --port: '70000' is not a TCP port: use 1-65535 (0: any free port)"),
        (["serve", "--port", "-1"], "argument --port: '-1' is not a TCP port"),
        (["demo", "--port", "http"], "argument --port: 'http' is not a TCP port"),
        (["token", "--tenant", "acme", "--ttl", "-5"], "argument --ttl: '-5' is not a positive whole number"),
        (["token", "--tenant", "acme", "--ttl", "0"], "argument --ttl: '0' is not a positive whole number"),
        (["models", "log", "--limit", "-1"], "argument --limit: '-1' is not a positive whole number"),
        (["token", "--tenant", "Bad!"], "argument --tenant: 'Bad!' is not a tenant id: use 2-63 characters"),
        (["query", "--tenant", "Bad!", "{}"], "argument --tenant: 'Bad!' is not a tenant id"),
        (["realtime", "--tenant", "Bad!", "--metric", "m"], "argument --tenant: 'Bad!' is not a tenant id"),
        (["models", "refresh", "--tenant", "Bad!'; drop"], 'argument --tenant: "Bad!\'; drop" is not a tenant id'),
    ],
)
def test_out_of_range_numbers_and_malformed_tenant_ids_are_refused_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in refused_by_the_parser(argv, capsys)


def test_a_well_formed_tenant_id_and_port_zero_pass_the_parser() -> None:
    args = cli._parser().parse_args(["token", "--tenant", "not-registered-yet", "--ttl", "60"])
    assert (args.tenant, args.ttl) == ("not-registered-yet", 60)
    assert cli._parser().parse_args(["serve", "--port", "0"]).port == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run-hour", "--tenants", ""], "--tenants '' names no tenant: give comma-separated tenant ids, or leave"),
        (["run-hour", "--tenants", " , "], "--tenants ' , ' names no tenant"),
        (["run-hour", "--tenants", "acme,Bad!"], "--tenants: 'Bad!' is not a tenant id: use 2-63 characters"),
        (["run-hour", "--hour", ""], "'hour' '' is not ISO-8601"),
        (["run-hour", "--hour", "garbage", "--tenants", "acme"], "'hour' 'garbage' is not ISO-8601"),
        (["run-hour", "--hour", "2026-01-01T10:30:00Z"], "must be on the hour"),
        (["run-hour", "--hour", "2999-01-01T00:00:00Z"], "has not completed yet"),
    ],
)
def test_run_hour_refuses_an_empty_or_bad_hour_or_tenant_list_before_starting_anything(
    argv: list[str], message: str, home: Path
) -> None:
    # When run-hour is given a bad --hour or --tenants (an empty value included: it does not mean "the default")
    with pytest.raises(InvalidInput) as err:
        cli.run(argv)
    # Then it is refused with the reason, before the local platform (and its home) was even created
    assert message in err.value.message
    assert not home.exists()


def test_run_hour_input_keeps_the_given_hour_and_tenants() -> None:
    assert cli._run_input("2026-01-01T10:00:00Z", " acme, beta ,acme") == {
        "hour": "2026-01-01T10:00:00Z",
        "tenants": ["acme", "beta", "acme"],
    }
    assert cli._run_input(None, None) == {}


def test_cdc_replay_of_a_directory_says_it_is_one(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=rf"^{tmp_path} is a directory; give a file with one captured change"):
        cli.run(["cdc", "replay", str(tmp_path)])
    with pytest.raises(InvalidInput, match="no such file"):
        cli.run(["cdc", "replay", str(tmp_path / "missing.jsonl")])


def test_a_failed_run_is_one_line_of_error_and_message_without_the_stack_trace() -> None:
    # Given a run whose plan function failed (the cause is the function's error JSON, stack trace included)
    cause = {
        "errorMessage": "'hour' 'garbage' is not ISO-8601 (example: 2026-01-31T13:00:00Z)",
        "errorType": "InvalidInput",
        "stackTrace": ['  File "/work/main/lambdas/plan/handler.py", line 23, in lambda_handler\n'],
    }
    execution = {"status": "FAILED", "error": "InvalidInput", "cause": json.dumps(cause)}

    # When it is described, then only the error name and message remain
    assert cli._run_failure(execution) == (
        "the run FAILED: InvalidInput: 'hour' 'garbage' is not ISO-8601 (example: 2026-01-31T13:00:00Z)"
    )
    # and a cause that is not a function's error is kept, to its first line
    assert cli._run_failure({"status": "TIMED_OUT", "cause": "took too long\nmore"}) == (
        "the run TIMED_OUT: unknown error: took too long"
    )
    assert cli._run_failure({"status": "ABORTED"}) == "the run ABORTED: unknown error: no cause given"


def test_the_state_machine_engines_errors_go_to_the_home_log_not_the_console(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = logging.getLogger("moto.stepfunctions")
    handlers, propagate = list(engine.handlers), engine.propagate
    state = logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component")

    # Given the local AWS about to run the state machine
    with _engine_log(home / "logs"):
        # When the engine logs an exception of a state, as moto does also for those the definition handles
        state.error("Exception=NoSuchJsonPathError ...")

    # Then the console stays clean and the log keeps it, once
    assert capsys.readouterr().err == ""
    assert (home / "logs" / "stepfunctions.log").read_text().count("Exception=NoSuchJsonPathError ...") == 1
    # and afterwards the engine's logger is as it was
    assert (engine.handlers, engine.propagate) == (handlers, propagate)


def test_a_port_in_use_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a port another program listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # When the API is asked to listen there
        with pytest.raises(InvalidInput, match=rf"^cannot listen on 127.0.0.1:{port}: .*; choose another --port"):
            cli._listen(port)
        with pytest.raises(SystemExit) as exit_:
            cli.main(["serve", "--port", str(port)])
    # Then the command exits 2 with that one line
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot listen on 127.0.0.1:{port}")
