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
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from http import HTTPStatus

from devstack.mwaa_emulator.backend import CliRunner, CliTimeout, json_dumps
from devstack.mwaa_emulator.cli_commands import UnsupportedCliCommand, parse_cli_command
from devstack.mwaa_emulator.environments import Environment
from devstack.mwaa_emulator.errors import ERROR_STATUS
from devstack.mwaa_emulator.faults import CLI_OPERATION, FaultInjector
from devstack.mwaa_emulator.http_base import HttpRequest, HttpResponse
from devstack.mwaa_emulator.tokens import TokenStore

CLI_PATHS = ("/aws_mwaa/cli", "/aws_mwaa/cli/")


class WebServer:
    def __init__(
        self,
        environment: Environment,
        *,
        cli_tokens: TokenStore,
        faults: FaultInjector,
        cli_runner: CliRunner,
        cli_timeout_seconds: float,
        sleep: Callable[[float], None],
    ) -> None:
        self._environment = environment
        self._cli_tokens = cli_tokens
        self._faults = faults
        self._cli_runner = cli_runner
        self._cli_timeout = cli_timeout_seconds
        self._sleep = sleep

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.raw_path not in CLI_PATHS:
            return _page(HTTPStatus.NOT_FOUND)
        if request.method != "POST":
            return _page(HTTPStatus.METHOD_NOT_ALLOWED)
        if not self._authorized(request.headers.get("authorization", "")):
            return _page(HTTPStatus.FORBIDDEN)
        fault = self._fault_status()
        if fault is not None:
            return _page(HTTPStatus(fault))
        try:
            command = parse_cli_command(request.body.decode("utf-8"))
        except (UnicodeDecodeError, UnsupportedCliCommand):
            return _page(HTTPStatus.INTERNAL_SERVER_ERROR)
        if not self._environment.cli_slots.acquire(blocking=False):
            return _page(HTTPStatus.SERVICE_UNAVAILABLE)
        try:
            output = self._cli_runner(self._environment.backend, command.argv, self._cli_timeout)
        except CliTimeout:
            return _page(HTTPStatus.GATEWAY_TIMEOUT)
        finally:
            self._environment.cli_slots.release()
        body = {
            "stdout": base64.b64encode(output.stdout).decode("ascii"),
            "stderr": base64.b64encode(output.stderr).decode("ascii"),
        }
        return HttpResponse(200, json_dumps(body), {"Content-Type": "application/json"})

    def _authorized(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return self._cli_tokens.environment_of(token.strip()) == self._environment.name

    def _fault_status(self) -> int | None:
        decision = self._faults.decide(CLI_OPERATION)
        if decision is None:
            return None
        if decision.latency_seconds:
            self._sleep(decision.latency_seconds)
        if decision.error is None:
            return None
        return decision.error if isinstance(decision.error, int) else ERROR_STATUS[decision.error]


def _page(status: HTTPStatus) -> HttpResponse:
    phrase = f"{status.value} {status.phrase}"
    body = f"<html><head><title>{phrase}</title></head><body><h1>{phrase}</h1></body></html>"
    return HttpResponse(status.value, body.encode(), {"Content-Type": "text/html"})
