"""The MWAA emulator held to what MWAA's documentation says it answers.

Each case in ``tests/contract/mwaa_documented/*.json`` records a documented answer and where it
was read. The recorded answer is replayed by a loopback HTTP server and the emulator is asked the
same question; ONE assertion function per case then checks both answers, as boto3 sees them (the
way the product calls MWAA), on the wire (status, ``x-amzn-ErrorType``, body members) and, for
``InvokeRestApi``, through the product's own transport. A case the documentation leaves open is
checked only as far as it is documented (each file's ``undocumented``).

No real Airflow: the emulator runs in front of its loopback fake Airflow with a recording CLI
runner, on a clock the tests move, so the whole file takes a few seconds.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore import xform_name
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.retries.standard import ThrottledRetryableChecker

from dagtrigger.errors import (
    AccessRefusedError,
    DagTriggerError,
    RejectedError,
    TransientTriggerError,
)
from dagtrigger.transports.airflow_api import ApiReply
from dagtrigger.transports.base import EnvironmentRef, TransportKind
from dagtrigger.transports.invoke_rest_api import InvokeRestApiTransport
from dagtrigger.transports.mwaa_control_plane import classify_mwaa_error
from devstack.mwaa_emulator import CliOutput, MwaaEmulator
from devstack.mwaa_emulator.backend import AirflowBackend
from devstack.mwaa_emulator.fake_airflow import FakeAirflow
from devstack.mwaa_emulator.http_base import HttpRequest, HttpResponse, LoopbackHttpServer

pytestmark = pytest.mark.contract

DOCUMENTED = Path(__file__).parent / "mwaa_documented"
ENV = "dev"
REGION = "us-east-1"
ACCESS_KEY = "AKIAEMULATOR"  # what MwaaEmulator.client() signs with
SECRET_KEY = "emulator-secret"
CLI_STDOUT = b"ran dags trigger\n"
# botocore model: Hostname (CreateCliToken/CreateWebLoginToken WebServerHostname)
HOSTNAME_PATTERN = re.compile(
    r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$"
)


def documented(case: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((DOCUMENTED / f"{case}.json").read_text())
    assert record["case"] == case
    assert record["sources"], f"{case}: a documented answer needs its source"
    return record


# --- what an answer looked like ----------------------------------------------------------------


@dataclass
class Wire:
    """An HTTP answer as it arrived: status, headers (names lower-cased) and body."""

    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None

    @property
    def error_type(self) -> str | None:
        # AWS may append ":<namespace URI>" to the code; botocore keeps what comes before it.
        value = self.headers.get("x-amzn-errortype")
        return value.split(":", 1)[0] if value else None


@dataclass
class Observed:
    """One control-plane call as boto3 made it: the wire answer and what boto3 made of it."""

    wire: Wire
    parsed: dict[str, Any] | None  # the result, or ClientError.response; None for raw HTTP
    error: ClientError | None = None

    @property
    def raised(self) -> str | None:
        """The class botocore raised (its modeled exception's name, or plain ClientError)."""
        return type(self.error).__name__ if self.error is not None else None


def call_boto3(client: Any, operation: str, params: Mapping[str, Any]) -> Observed:
    """Call ``operation`` with boto3, keeping the raw answer botocore parsed."""
    captured: dict[str, Any] = {}

    def keep_raw(response_dict: dict[str, Any], **_: Any) -> None:
        captured.update(response_dict)

    event = f"before-parse.mwaa.{operation}"
    client.meta.events.register(event, keep_raw)
    try:
        parsed, error = getattr(client, xform_name(operation))(**params), None
    except ClientError as raised:
        parsed, error = raised.response, raised
    finally:
        client.meta.events.unregister(event, keep_raw)
    headers = {name.lower(): value for name, value in captured["headers"].items()}
    return Observed(Wire(captured["status_code"], headers, captured["body"]), parsed, error)


def call_signed_http(endpoint: str, operation: str, params: Mapping[str, Any]) -> Observed:
    """A SigV4-signed raw request, for what botocore refuses to send (a missing Path)."""
    assert operation == "InvokeRestApi"
    name = params.get("Name", ENV)
    body = {key: value for key, value in params.items() if key != "Name"}
    request = AWSRequest(
        method="POST",
        url=f"{endpoint}/restapi/{name}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "airflow", REGION).add_auth(request)
    response = requests.post(
        request.url, data=request.body, headers=dict(request.headers.items()), timeout=10
    )
    headers = {name.lower(): value for name, value in response.headers.items()}
    return Observed(Wire(response.status_code, headers, response.content), None)


def post_cli(url: str, token: str, command: str, verify: str | bool) -> Wire:
    response = requests.post(
        f"{url}/aws_mwaa/cli",
        data=command.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        verify=verify,
        timeout=10,
    )
    headers = {name.lower(): value for name, value in response.headers.items()}
    return Wire(response.status_code, headers, response.content)


def mwaa_client(endpoint: str) -> Any:
    """A boto3 MWAA client as the emulator's own: dummy credentials, no retries."""
    return boto3.client(
        "mwaa",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(inject_host_prefix=False, retries={"total_max_attempts": 1}),
    )


def invoke_transport(client: Any) -> InvokeRestApiTransport:
    """The product's InvokeRestApi transport over `client` (Airflow 3, so no GetEnvironment)."""
    environment = EnvironmentRef(
        alias=ENV, name=ENV, transport=TransportKind.INVOKE_REST_API, airflow_major=3
    )
    return InvokeRestApiTransport(environment, client)


# --- the servers -------------------------------------------------------------------------------


class Replay:
    """A loopback server that answers every request with one recorded documented answer."""

    def __init__(self) -> None:
        self._answer: dict[str, Any] = {"status": 500, "headers": {}, "body": None}
        self._lock = threading.Lock()
        self._server = LoopbackHttpServer(self._handle, name="mwaa-documented-replay")

    @property
    def url(self) -> str:
        return f"http://{self._server.host_port}"

    def serve(self, answer: Mapping[str, Any]) -> str:
        with self._lock:
            self._answer = dict(answer)
        return self.url

    def _handle(self, _request: HttpRequest) -> HttpResponse:
        with self._lock:
            answer = self._answer
        body = answer["body"]
        raw = b"" if body is None else json.dumps(body).encode()
        return HttpResponse(
            answer["status"], raw, {"x-amzn-RequestId": "recorded", **answer["headers"]}
        )

    def __enter__(self) -> Replay:
        self._server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class EchoCli:
    """Stands in for the airflow binary: prints what it ran."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, backend: AirflowBackend, argv: Sequence[str], timeout: float) -> CliOutput:
        self.calls.append(tuple(argv))
        return CliOutput(stdout=f"ran {' '.join(argv[:2])}\n".encode(), stderr=b"")


@dataclass
class Stack:
    emulator: MwaaEmulator
    airflow: FakeAirflow
    clock: Clock
    cli: EchoCli
    mwaa: Any

    def airflow_answer(self, method: str, path: str, body: Any = None) -> ApiReply:
        """What the fake Airflow itself answers (asked directly, not through the emulator)."""
        base = self.airflow.base_url
        token = requests.post(
            f"{base}/auth/token",
            json={"username": self.airflow.username, "password": self.airflow.password},
            timeout=10,
        ).json()["access_token"]
        response = requests.request(
            method,
            f"{base}{self.airflow.api_prefix()}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        return ApiReply(response.status_code, response.json())

    def web_server_url(self) -> str:
        return f"https://{self.emulator.web_server_hostname(ENV)}"


@pytest.fixture(scope="module")
def replay() -> Iterator[Replay]:
    with Replay() as server:
        yield server


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    airflow, clock, cli = FakeAirflow(major=3).start(), Clock(), EchoCli()
    try:
        with MwaaEmulator(tmp_path, clock=clock, cli_runner=cli) as emulator:
            emulator.add_environment(ENV, airflow)
            yield Stack(emulator, airflow, clock, cli, emulator.client())
    finally:
        airflow.stop()


# --- the assertion functions, one per case -----------------------------------------------------


def check_invoke_rest_api_success(observed: Observed, airflow: ApiReply) -> None:
    wire = observed.wire
    assert wire.status == 200
    assert wire.headers["content-type"].startswith("application/json")
    assert wire.json == {"RestApiStatusCode": airflow.status, "RestApiResponse": airflow.body}
    assert observed.error is None
    assert observed.parsed is not None
    assert observed.parsed["RestApiStatusCode"] == airflow.status
    assert observed.parsed["RestApiResponse"] == airflow.body


def check_rest_api_exception(observed: Observed, shape: str, airflow: ApiReply) -> None:
    """Airflow's 4xx (RestApiClientException) or 5xx (RestApiServerException), passed on."""
    expected_class = 4 if shape == "RestApiClientException" else 5
    assert airflow.status // 100 == expected_class
    wire = observed.wire
    assert wire.status == 400  # the modeled status of both; Airflow's is in the body
    assert wire.error_type == shape
    assert wire.json == {"RestApiStatusCode": airflow.status, "RestApiResponse": airflow.body}
    assert observed.raised == shape
    assert observed.parsed is not None
    assert observed.parsed["Error"] == {"Code": shape, "Message": ""}  # no message member
    assert observed.parsed["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert observed.parsed["RestApiStatusCode"] == airflow.status
    assert observed.parsed["RestApiResponse"] == airflow.body


def check_error(observed: Observed, *, shape: str, status: int, message_key: str) -> None:
    """A control-plane error: its status, its code in x-amzn-ErrorType, a message in the body."""
    wire = observed.wire
    assert wire.status == status
    assert wire.error_type == shape
    body = wire.json
    assert isinstance(body, dict)
    assert isinstance(body.get(message_key), str), f"{shape} carries its text in {message_key!r}"
    if observed.parsed is None:  # raw HTTP only
        return
    assert observed.parsed["Error"]["Code"] == shape
    assert observed.parsed["Error"]["Message"] == body[message_key]
    assert observed.parsed["ResponseMetadata"]["HTTPStatusCode"] == status


def check_cli_output(wire: Wire) -> dict[str, bytes]:
    """200 with a JSON object of exactly base64 ``stdout`` and ``stderr``; returns them decoded."""
    assert wire.status == 200
    body = wire.json
    assert isinstance(body, dict)
    assert set(body) == {"stdout", "stderr"}
    decoded = {}
    for stream in ("stdout", "stderr"):
        assert isinstance(body[stream], str)
        try:
            decoded[stream] = base64.b64decode(body[stream], validate=True)
        except binascii.Error as error:  # pragma: no cover - the assertion message matters
            raise AssertionError(f"{stream} is not base64: {body[stream]!r}") from error
    return decoded


def check_cli_refused_unsupported(wire: Wire) -> None:
    assert wire.status == 500


def check_token_answer(observed: Observed, members: set[str], token_member: str) -> None:
    """CreateCliToken/CreateWebLoginToken: 200, every documented member, a bare host name."""
    assert observed.wire.status == 200
    body = observed.wire.json
    assert isinstance(body, dict)
    assert set(body) == members
    assert isinstance(body[token_member], str)
    assert body[token_member]
    hostname = body["WebServerHostname"]
    assert "://" not in hostname
    assert 1 <= len(hostname) <= 255
    # The emulator's web server listens on a loopback port; the documented name has none.
    assert HOSTNAME_PATTERN.match(urlsplit(f"https://{hostname}").hostname or "")
    assert observed.parsed is not None
    assert {key: observed.parsed[key] for key in members} == body


# The product's reading of each answer: retried, access refused (an alarm), or rejected.
def classify(observed: Observed, operation: str) -> DagTriggerError:
    assert observed.error is not None
    return classify_mwaa_error(observed.error, environment=ENV, action=operation)


# --- InvokeRestApi: Airflow's answers passed on ------------------------------------------------


def test_invoke_rest_api_success(replay: Replay, stack: Stack) -> None:
    case = documented("invoke_rest_api_success")
    recorded = ApiReply(case["airflow_answer"]["status"], case["airflow_answer"]["body"])
    live = stack.airflow_answer("GET", "/dags")
    params = {"Name": ENV, **case["request"]}

    docs_client = mwaa_client(replay.serve(case["answer"]))
    check_invoke_rest_api_success(call_boto3(docs_client, "InvokeRestApi", params), recorded)
    check_invoke_rest_api_success(call_boto3(stack.mwaa, "InvokeRestApi", params), live)

    # The product's transport reads both alike.
    for client, airflow in ((docs_client, recorded), (stack.mwaa, live)):
        assert invoke_transport(client).call("GET", "/dags", body=None, query=None) == airflow


@pytest.mark.parametrize(
    ("case_name", "shape"),
    [
        ("rest_api_client_exception", "RestApiClientException"),
        ("rest_api_server_exception", "RestApiServerException"),
    ],
)
def test_airflow_errors_are_passed_on_in_rest_api_exceptions(
    replay: Replay, stack: Stack, case_name: str, shape: str
) -> None:
    case = documented(case_name)
    request = case["request"]
    recorded = ApiReply(case["airflow_answer"]["status"], case["airflow_answer"]["body"])
    live = stack.airflow_answer(request["Method"], request["Path"], request.get("Body"))
    params = {"Name": ENV, **request}

    docs_client = mwaa_client(replay.serve(case["answer"]))
    check_rest_api_exception(call_boto3(docs_client, "InvokeRestApi", params), shape, recorded)
    check_rest_api_exception(call_boto3(stack.mwaa, "InvokeRestApi", params), shape, live)

    # The product's transport turns both into Airflow's own reply.
    for client, airflow in ((docs_client, recorded), (stack.mwaa, live)):
        reply = invoke_transport(client).call(
            request["Method"], request["Path"], body=request.get("Body"), query=None
        )
        assert reply == airflow


# --- control-plane errors ----------------------------------------------------------------------


def _request_variants(case: dict[str, Any]) -> list[dict[str, Any]]:
    return list(case["requests"])


@pytest.mark.parametrize(
    "variant",
    _request_variants(documented("validation_exception")),
    ids=lambda variant: variant["name"],
)
def test_invalid_input_is_a_validation_exception(
    replay: Replay, stack: Stack, variant: dict[str, Any]
) -> None:
    case = documented("validation_exception")
    operation, params = variant["operation"], {"Name": ENV, **variant["params"]}

    def observe(endpoint: str, client: Any) -> Observed:
        if variant["via"] == "http":
            return call_signed_http(endpoint, operation, params)
        return call_boto3(client, operation, params)

    docs = observe(replay.serve(case["answer"]), mwaa_client(replay.url))
    live = observe(stack.emulator.control_plane_url, stack.mwaa)
    for observed in (docs, live):
        check_error(observed, shape="ValidationException", status=400, message_key="message")
        if observed.error is not None:
            assert observed.raised == "ValidationException"
            refused = classify(observed, operation)
            assert isinstance(refused, RejectedError)
            assert refused.code == "mwaa_validation_error"


@pytest.mark.parametrize(
    "variant",
    _request_variants(documented("resource_not_found")),
    ids=lambda variant: variant["name"],
)
def test_an_unknown_environment_is_resource_not_found(
    replay: Replay, stack: Stack, variant: dict[str, Any]
) -> None:
    case = documented("resource_not_found")
    operation, params = variant["operation"], variant["params"]
    docs = call_boto3(mwaa_client(replay.serve(case["answer"])), operation, params)
    live = call_boto3(stack.mwaa, operation, params)
    for observed in (docs, live):
        check_error(observed, shape="ResourceNotFoundException", status=404, message_key="message")
        assert observed.raised == "ResourceNotFoundException"
        refused = classify(observed, operation)
        assert isinstance(refused, AccessRefusedError)
        assert refused.code == "environment_not_found"


def test_a_caller_without_permission_gets_access_denied(replay: Replay, stack: Stack) -> None:
    case = documented("access_denied")
    params = {"Name": ENV, **case["request"]}
    docs = call_boto3(mwaa_client(replay.serve(case["answer"])), "InvokeRestApi", params)
    stack.emulator.refuse_credentials(ACCESS_KEY, "denied")
    live = call_boto3(stack.mwaa, "InvokeRestApi", params)
    for observed in (docs, live):
        # The model's member is "Message" (capital M), unlike every other MWAA error's.
        check_error(observed, shape="AccessDeniedException", status=403, message_key="Message")
        assert observed.raised == "AccessDeniedException"
        refused = classify(observed, "InvokeRestApi")
        assert isinstance(refused, AccessRefusedError)
        assert refused.code == "mwaa_access_denied"


def test_throttling_is_a_throttling_exception_with_http_400(replay: Replay, stack: Stack) -> None:
    case = documented("throttling")
    params = {"Name": ENV, **case["request"]}
    docs = call_boto3(mwaa_client(replay.serve(case["answer"])), "InvokeRestApi", params)
    # The emulator's assumed rate: 10 calls a second with bursts of 10 (its clock stands still).
    for _ in range(10):
        assert call_boto3(stack.mwaa, "InvokeRestApi", params).error is None
    live = call_boto3(stack.mwaa, "InvokeRestApi", params)
    for observed in (docs, live):
        check_error(observed, shape="ThrottlingException", status=400, message_key="message")
        assert observed.raised == "ClientError"  # not modeled by MWAA
        assert isinstance(classify(observed, "InvokeRestApi"), TransientTriggerError)
    # botocore retries it by its code, whatever the HTTP status.
    assert "ThrottlingException" in ThrottledRetryableChecker._THROTTLED_ERROR_CODES


# --- tokens ------------------------------------------------------------------------------------


def test_create_cli_token_answers_its_documented_members(replay: Replay, stack: Stack) -> None:
    case = documented("cli_token_lifetime")
    members = set(case["answer"]["body"])
    docs = call_boto3(mwaa_client(replay.serve(case["answer"])), "CreateCliToken", {"Name": ENV})
    live = call_boto3(stack.mwaa, "CreateCliToken", {"Name": ENV})
    for observed in (docs, live):
        check_token_answer(observed, members, "CliToken")


def test_create_web_login_token_answers_its_documented_members(
    replay: Replay, stack: Stack
) -> None:
    case = documented("web_login_token")
    members = set(case["answer"]["body"])
    docs = call_boto3(
        mwaa_client(replay.serve(case["answer"])), "CreateWebLoginToken", {"Name": ENV}
    )
    live = call_boto3(stack.mwaa, "CreateWebLoginToken", {"Name": ENV})
    for observed in (docs, live):
        check_token_answer(observed, members, "WebToken")
        assert 1 <= len(observed.wire.json["AirflowIdentity"]) <= 64


def test_a_cli_token_works_for_its_documented_lifetime_then_is_refused(stack: Stack) -> None:
    lifetime = documented("cli_token_lifetime")["lifetime_seconds"]
    assert lifetime == 60
    issued = stack.clock.now
    token = stack.mwaa.create_cli_token(Name=ENV)["CliToken"]
    verify = str(stack.emulator.ca_bundle_path)

    stack.clock.now = issued + lifetime - 0.5
    check_cli_output(post_cli(stack.web_server_url(), token, "version", verify))

    stack.clock.now = issued + lifetime
    refused = post_cli(stack.web_server_url(), token, "version", verify)
    # Documented: the token is valid for 60 s. Undocumented: what an expired one gets; all that
    # is held here is that it is refused as a client error and nothing runs.
    assert 400 <= refused.status < 500
    assert stack.cli.calls == [("version",)]


def test_a_web_login_token_lives_its_documented_lifetime(stack: Stack) -> None:
    lifetime = documented("web_login_token")["lifetime_seconds"]
    assert lifetime == 60
    token = stack.mwaa.create_web_login_token(Name=ENV)["WebToken"]
    # The token is consumed by the login page's script (it travels in the URL fragment), which
    # the emulator does not serve, so its store is asked directly.
    web_tokens = stack.emulator._web_tokens
    issued = stack.clock.now
    stack.clock.now = issued + lifetime - 0.5
    assert web_tokens.environment_of(token) == ENV
    stack.clock.now = issued + lifetime
    assert web_tokens.environment_of(token) is None


# --- the web server's /aws_mwaa/cli ------------------------------------------------------------


def test_the_cli_answers_base64_stdout_and_stderr(replay: Replay, stack: Stack) -> None:
    case = documented("cli_output")
    command = case["request"]["command"]
    docs = post_cli(replay.serve(case["answer"]), "a-recorded-token", command, verify=False)
    token = stack.mwaa.create_cli_token(Name=ENV)["CliToken"]
    live = post_cli(stack.web_server_url(), token, command, str(stack.emulator.ca_bundle_path))
    check_cli_output(docs)
    decoded = check_cli_output(live)
    assert decoded == {"stdout": CLI_STDOUT, "stderr": b""}
    assert stack.cli.calls == [("dags", "trigger", "ingest_sales", "-c", '{"key": "value"}')]


def test_an_unsupported_cli_command_gets_500(replay: Replay, stack: Stack) -> None:
    case = documented("cli_unsupported_command")
    command = case["request"]["command"]
    docs = post_cli(replay.serve(case["answer"]), "a-recorded-token", command, verify=False)
    token = stack.mwaa.create_cli_token(Name=ENV)["CliToken"]
    live = post_cli(stack.web_server_url(), token, command, str(stack.emulator.ca_bundle_path))
    for wire in (docs, live):
        check_cli_refused_unsupported(wire)
    assert stack.cli.calls == []


# --- the records themselves --------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(DOCUMENTED.glob("*.json")), ids=lambda path: path.stem)
def test_every_record_names_its_sources_and_what_is_undocumented(path: Path) -> None:
    record = json.loads(path.read_text())
    assert record["case"] == path.stem
    for source in record["sources"]:
        assert source.get("url") or (source.get("repo") and source.get("path")), source
        assert source["says"].strip()
    assert isinstance(record["undocumented"], list)
    assert isinstance(record["illustrative"], list)
    if record.get("emulator_assumption") is not None:
        assert record["undocumented"], "an assumption fills a gap the sources leave"
