"""The environment's Airflow web server endpoints that MWAA adds: POST /aws_mwaa/cli.

What MWAA answers, and the evidence:
* 200 with JSON {"stdout": base64, "stderr": base64} and no exit code (MWAA user guide,
  "Apache Airflow CLI command reference", sample code).
* A command MWAA does not support: HTTP 500 (aws/amazon-mwaa-docker-images#148: unsupported
  commands such as `pools import` and `roles delete` "return `Response [500]`").
* An unknown or expired CLI token (valid 60 s, "Creating an Apache Airflow CLI token"): HTTP 403
  Forbidden. No public capture of MWAA's exact body was found; 403 is what the web server's
  authentication layer answers for a refused bearer token. Assumption.
* A request while another CLI request of the environment runs: MWAA documents only that
  "available concurrency is limited" and asks callers not to overlap requests. The emulator
  answers 503 Service Unavailable, as an overloaded web server behind a load balancer does.
  Assumption.
* A command that outlives the timeout: 504 Gateway Timeout (the load balancer gives up).

The documented parts, with their sources, are recorded in tests/contract/mwaa_documented/ and
checked against this server by tests/contract/test_mwaa_documented_answers.py.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from http import HTTPStatus

from devstack.mwaa_emulator.backend import CliRunner, CliTimeout, json_dumps
from devstack.mwaa_emulator.cli_commands import UnsupportedCliCommand, parse_cli_command
from devstack.mwaa_emulator.environments import Environment
from devstack.mwaa_emulator.faults import CLI_OPERATION, FaultInjector
from devstack.mwaa_emulator.http_base import HttpRequest, HttpResponse, status_page
from devstack.mwaa_emulator.request_log import RequestLog, cli_request_text
from devstack.mwaa_emulator.tokens import TokenStore

CLI_PATHS = ("/aws_mwaa/cli", "/aws_mwaa/cli/")


@dataclass(kw_only=True)
class WebServer:
    environment: Environment
    cli_tokens: TokenStore
    faults: FaultInjector
    cli_runner: CliRunner
    cli_timeout_seconds: float
    requests: RequestLog

    def handle(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        response = self._answer(request)
        if request.raw_path in CLI_PATHS:
            self.requests.record(
                operation=CLI_OPERATION,
                environment=self.environment.name,
                request=_command_text(request.body),
                status=response.status,
                started=started,
            )
        return response

    def _answer(self, request: HttpRequest) -> HttpResponse:
        if request.raw_path not in CLI_PATHS:
            return status_page(HTTPStatus.NOT_FOUND)
        if request.method != "POST":
            return status_page(HTTPStatus.METHOD_NOT_ALLOWED)
        if not self._authorized(request.headers.get("authorization", "")):
            return status_page(HTTPStatus.FORBIDDEN)
        injected = self.faults.inject(CLI_OPERATION)
        if injected is not None:
            return status_page(injected.http_status)
        try:
            command = parse_cli_command(request.body.decode("utf-8"))
        except (UnicodeDecodeError, UnsupportedCliCommand):
            return status_page(HTTPStatus.INTERNAL_SERVER_ERROR)
        environment = self.environment
        if not environment.cli_slots.acquire(blocking=False):
            return status_page(HTTPStatus.SERVICE_UNAVAILABLE)
        try:
            output = self.cli_runner(environment.backend, command.argv, self.cli_timeout_seconds)
        except CliTimeout:
            return status_page(HTTPStatus.GATEWAY_TIMEOUT)
        finally:
            environment.cli_slots.release()
        body = {
            "stdout": base64.b64encode(output.stdout).decode("ascii"),
            "stderr": base64.b64encode(output.stderr).decode("ascii"),
        }
        return HttpResponse(200, json_dumps(body), {"Content-Type": "application/json"})

    def _authorized(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return self.cli_tokens.environment_of(token.strip()) == self.environment.name


def _command_text(body: bytes) -> str:
    """The command line a request carried, as recorded (see `cli_request_text`)."""
    try:
        return cli_request_text(parse_cli_command(body.decode("utf-8")).argv)
    except (UnicodeDecodeError, UnsupportedCliCommand):
        # Refused before it ran: the first two words say what was asked, the rest may be secret.
        words = body.decode("utf-8", errors="replace").split()
        return " ".join(words[:2]) + (" ..." if len(words) > 2 else "")
