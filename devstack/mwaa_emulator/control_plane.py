"""MWAA's control plane over REST-JSON, as botocore's "mwaa" service model defines it.

Requests must carry a SigV4 Authorization header; the signature itself is not checked, but the
access key it names may be refused (`devstack.mwaa_emulator.credentials`). ``/_emulator/...`` is
the emulator's own admin API (faults, credentials, health, the requests it answered), outside
MWAA's protocol; nothing there is ever recorded.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from devstack.mwaa_emulator.backend import json_dumps
from devstack.mwaa_emulator.credentials import CredentialPolicy, access_key_id_of
from devstack.mwaa_emulator.environments import (
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    Environment,
    EnvironmentRegistry,
)
from devstack.mwaa_emulator.errors import MwaaError, not_found, rest_api_error, validation_error
from devstack.mwaa_emulator.faults import FaultInjector
from devstack.mwaa_emulator.http_base import HttpRequest, HttpResponse, status_page
from devstack.mwaa_emulator.request_log import RequestLog
from devstack.mwaa_emulator.tokens import TokenStore

INVOKE_METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
PATH_MAX_LENGTH = 64
LIST_MAX_RESULTS = 25
CREATE_REQUIRED = ("ExecutionRoleArn", "SourceBucketArn", "DagS3Path", "NetworkConfiguration")
_NAME_RE = re.compile(rf"^{NAME_PATTERN}$")


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    pattern: re.Pattern[str]


ROUTES = (
    Route("ListEnvironments", "GET", re.compile(r"^/environments/?$")),
    Route("CreateEnvironment", "PUT", re.compile(r"^/environments/(?P<name>[^/]+)$")),
    Route("GetEnvironment", "GET", re.compile(r"^/environments/(?P<name>[^/]+)$")),
    Route("DeleteEnvironment", "DELETE", re.compile(r"^/environments/(?P<name>[^/]+)$")),
    Route("CreateCliToken", "POST", re.compile(r"^/clitoken/(?P<name>[^/]+)$")),
    Route("CreateWebLoginToken", "POST", re.compile(r"^/webtoken/(?P<name>[^/]+)$")),
    Route("InvokeRestApi", "POST", re.compile(r"^/restapi/(?P<name>[^/]+)$")),
)

CreateEnvironmentHook = Callable[[str, str | None, Mapping[str, Any]], Environment]


@dataclass(kw_only=True)
class ControlPlane:
    registry: EnvironmentRegistry
    faults: FaultInjector
    cli_tokens: TokenStore
    web_tokens: TokenStore
    account_id: str
    create_environment: CreateEnvironmentHook
    delete_environment: Callable[[str], Environment | None]
    credentials: CredentialPolicy
    environment_arn: Callable[[str], str]
    requests: RequestLog

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/_emulator/"):
            return self._admin(request)
        started = time.monotonic()
        operation, name, error_type = "unknown", None, None
        try:
            operation, name = _route(request)
            _require_sigv4(request)
            self.credentials.check(
                access_key_id_of(request.headers.get("authorization", "")),
                operation=operation,
                resource_arn=self.environment_arn(name or "*"),
            )
            self._apply_fault(operation)
            response = _json_response(200, self._dispatch(operation, name, request))
        except MwaaError as error:
            response, error_type = _error_response(error), _error_text(error)
        except _RawHttpError as error:
            response = status_page(error.status, _request_id_header())
        self.requests.record(
            operation=operation,
            environment=name,
            request=_request_text(operation, request),
            status=response.status,
            error=error_type,
            started=started,
        )
        return response

    def _dispatch(self, operation: str, name: str | None, request: HttpRequest) -> Any:
        if operation == "ListEnvironments":
            return self._list_environments(request.query)
        assert name is not None
        _validate_name(name)
        if operation == "CreateEnvironment":
            return self._create(name, _json_body(request))
        environment = self.registry.get(name)
        if environment is None:
            raise not_found(name)
        handlers: dict[str, Callable[[Environment, HttpRequest], Any]] = {
            "GetEnvironment": lambda env, _req: {"Environment": self._describe(env)},
            "DeleteEnvironment": self._delete,
            "CreateCliToken": self._create_cli_token,
            "CreateWebLoginToken": self._create_web_login_token,
            "InvokeRestApi": self._invoke_rest_api,
        }
        return handlers[operation](environment, request)

    def _apply_fault(self, operation: str) -> None:
        injected = self.faults.inject(operation)
        if injected is None:
            return
        error = injected.error
        if isinstance(error, int):
            raise _RawHttpError(error)
        if error in ("RestApiClientException", "RestApiServerException"):
            default = 429 if error == "RestApiClientException" else 503
            status = injected.rest_api_status or default
            raise rest_api_error(status, {"detail": "Injected fault", "status": status})
        raise MwaaError(error, _fault_message(error))

    def _create(self, name: str, body: Mapping[str, Any]) -> Any:
        missing = [member for member in CREATE_REQUIRED if member not in body]
        if missing:
            raise validation_error(
                f"{len(missing)} validation error(s) detected: missing required member(s) "
                + ", ".join(missing)
            )
        version = body.get("AirflowVersion")
        if version is not None and not isinstance(version, str):
            raise validation_error("Value at 'airflowVersion' failed to satisfy constraint")
        environment = self.create_environment(name, version, body)
        return {"Arn": environment.arn}

    def _delete(self, environment: Environment, _request: HttpRequest) -> Any:
        self.delete_environment(environment.name)
        return {}

    def _list_environments(self, query: Mapping[str, list[str]]) -> Any:
        max_results = _int_query(query, "MaxResults", default=LIST_MAX_RESULTS)
        if not 1 <= max_results <= LIST_MAX_RESULTS:
            raise validation_error(
                "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: "
                f"Member must have value between 1 and {LIST_MAX_RESULTS}"
            )
        start = _int_query(query, "NextToken", default=0)
        names = [environment.name for environment in self.registry.all()]
        page = names[start : start + max_results]
        answer: dict[str, Any] = {"Environments": page}
        if start + max_results < len(names):
            answer["NextToken"] = str(start + max_results)
        return answer

    def _create_cli_token(self, environment: Environment, _request: HttpRequest) -> Any:
        return {
            "CliToken": self.cli_tokens.issue(environment.name),
            "WebServerHostname": environment.web_server_hostname,
        }

    def _create_web_login_token(self, environment: Environment, _request: HttpRequest) -> Any:
        return {
            "WebToken": self.web_tokens.issue(environment.name),
            "WebServerHostname": environment.web_server_hostname,
            "IamIdentity": f"arn:aws:iam::{self.account_id}:user/mwaa-emulator",
            "AirflowIdentity": "assumed-role/mwaa-emulator",
        }

    def _invoke_rest_api(self, environment: Environment, request: HttpRequest) -> Any:
        body = _json_body(request)
        path, method = _validated_invoke(body)
        query = body.get("QueryParameters")
        if query is not None and not isinstance(query, dict):
            raise validation_error("QueryParameters must be a JSON object")
        if not environment.rate_limiter.try_acquire():
            raise MwaaError("ThrottlingException", "Rate exceeded")
        answer = environment.rest_client.call(method, path, query, body.get("Body"))
        if answer.status_code >= 400:
            raise rest_api_error(answer.status_code, answer.body)
        return {"RestApiStatusCode": answer.status_code, "RestApiResponse": answer.body}

    def _describe(self, environment: Environment) -> dict[str, Any]:
        settings = environment.settings
        bucket = re.sub(r"[^a-z0-9.-]", "-", environment.name.lower())
        return {
            "Name": environment.name,
            "Arn": environment.arn,
            "Status": "AVAILABLE",
            "CreatedAt": environment.created_at,
            # Real MWAA answers a bare host name here (no scheme), whatever the model's pattern.
            "WebserverUrl": environment.web_server_hostname,
            "AirflowVersion": environment.airflow_version,
            "ExecutionRoleArn": settings.get(
                "ExecutionRoleArn", f"arn:aws:iam::{self.account_id}:role/mwaa-{environment.name}"
            ),
            "ServiceRoleArn": (
                f"arn:aws:iam::{self.account_id}:role/aws-service-role/airflow.amazonaws.com/"
                "AWSServiceRoleForAmazonMWAA"
            ),
            "SourceBucketArn": settings.get("SourceBucketArn", f"arn:aws:s3:::mwaa-{bucket}"),
            "DagS3Path": settings.get("DagS3Path", "dags"),
            "EnvironmentClass": settings.get("EnvironmentClass", "mw1.small"),
            "MaxWorkers": settings.get("MaxWorkers", 10),
            "MinWorkers": settings.get("MinWorkers", 1),
            "Schedulers": settings.get("Schedulers", 2),
            "WebserverAccessMode": settings.get("WebserverAccessMode", "PUBLIC_ONLY"),
            "EndpointManagement": settings.get("EndpointManagement", "SERVICE"),
            "WeeklyMaintenanceWindowStart": settings.get(
                "WeeklyMaintenanceWindowStart", "SUN:03:30"
            ),
            "NetworkConfiguration": settings.get(
                "NetworkConfiguration",
                {
                    "SubnetIds": ["subnet-0emulator1", "subnet-0emulator2"],
                    "SecurityGroupIds": ["sg-0emulator"],
                },
            ),
            "LastUpdate": {
                "Status": "SUCCESS",
                "CreatedAt": environment.created_at,
                "Source": "SERVICE",
            },
            **({"Tags": settings["Tags"]} if settings.get("Tags") else {}),
        }

    def _admin(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/_emulator/health":
            return _json_response(200, {"status": "ok"})
        if request.path == "/_emulator/credentials":
            return self._admin_credentials(request)
        if request.path == "/_emulator/requests":
            return self._admin_requests(request)
        if request.path != "/_emulator/faults":
            return status_page(404, _request_id_header())
        try:
            if request.method == "GET":
                return _json_response(200, self.faults.describe())
            if request.method == "POST":
                payload = json.loads(request.body or b"{}")
                if not isinstance(payload, dict):
                    raise ValueError("the fault must be a JSON object")
                self.faults.apply_json(payload)
                return _json_response(200, self.faults.describe())
            if request.method == "DELETE":
                operation = request.query.get("operation", [None])[0]
                self.faults.clear(operation)
                return _json_response(200, self.faults.describe())
        except (ValueError, TypeError) as error:
            return _json_response(400, {"message": str(error)})
        return status_page(405, _request_id_header())

    def _admin_credentials(self, request: HttpRequest) -> HttpResponse:
        """``POST {"access_key_id": "AKIA...", "state": "expired"|"revoked"|"denied"|"valid"}``;
        ``DELETE`` accepts every credential again; ``GET`` lists the refused ones."""
        try:
            if request.method == "POST":
                payload = json.loads(request.body or b"{}")
                if not isinstance(payload, dict):
                    raise ValueError("the credential change must be a JSON object")
                key, state = payload.get("access_key_id"), payload.get("state")
                if not isinstance(key, str) or not isinstance(state, str):
                    raise ValueError("give 'access_key_id' and 'state' as strings")
                if state == "valid":
                    self.credentials.restore(key)
                else:
                    self.credentials.refuse(key, state)
            elif request.method == "DELETE":
                self.credentials.restore()
            elif request.method != "GET":
                return status_page(405, _request_id_header())
        except ValueError as error:
            return _json_response(400, {"message": str(error)})
        return _json_response(200, self.credentials.describe())

    def _admin_requests(self, request: HttpRequest) -> HttpResponse:
        """``GET [?limit=N]``: the requests the emulator answered, oldest first; ``DELETE``
        forgets them."""
        if request.method == "DELETE":
            self.requests.clear()
            return _json_response(200, self.requests.describe())
        if request.method != "GET":
            return status_page(405, _request_id_header())
        try:
            limit = _int_query(request.query, "limit", default=0)
        except MwaaError as error:
            return _json_response(400, {"message": error.message})
        return _json_response(200, self.requests.describe(max(limit, 0) or None))


def _request_text(operation: str, request: HttpRequest) -> str:
    """What a call asked for, to record: InvokeRestApi's method and path (never its body)."""
    if operation != "InvokeRestApi":
        return ""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    return f"{body.get('Method', '?')} {body.get('Path', '?')}"


def _error_text(error: MwaaError) -> str:
    """The error type, with Airflow's own status for InvokeRestApi's RestApi*Exception."""
    airflow_status = error.members.get("RestApiStatusCode")
    return f"{error.shape} (Airflow {airflow_status})" if airflow_status else error.shape


class _RawHttpError(Exception):
    """A bare HTTP error with no AWS error type, as a load balancer in front would send."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _route(request: HttpRequest) -> tuple[str, str | None]:
    path_matched = False
    for route in ROUTES:
        match = route.pattern.match(request.raw_path)
        if match is None:
            continue
        path_matched = True
        if route.method == request.method:
            name = match.groupdict().get("name")
            return route.operation, unquote(name) if name is not None else None
    message = (
        "Method not allowed"
        if path_matched
        else f"No operation at {request.method} {request.raw_path}"
    )
    raise MwaaError("UnknownOperationException", message)


def _require_sigv4(request: HttpRequest) -> None:
    authorization = request.headers.get("authorization", "")
    if not (authorization.startswith("AWS4-HMAC-SHA256 ") and "Credential=" in authorization):
        raise MwaaError("MissingAuthenticationTokenException", "Missing Authentication Token")


def _validate_name(name: str) -> None:
    if len(name) > NAME_MAX_LENGTH or not _NAME_RE.match(name):
        raise validation_error(
            "1 validation error detected: Value at 'name' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {NAME_PATTERN} "
            f"and have length <= {NAME_MAX_LENGTH}"
        )


def _validated_invoke(body: Mapping[str, Any]) -> tuple[str, str]:
    path, method = body.get("Path"), body.get("Method")
    problems = []
    if not isinstance(path, str) or not path:
        problems.append("Value at 'path' failed to satisfy constraint: Member must not be null")
    elif len(path) > PATH_MAX_LENGTH:
        problems.append(
            f"Value '{path}' at 'path' failed to satisfy constraint: Member must have length "
            f"less than or equal to {PATH_MAX_LENGTH}"
        )
    if method not in INVOKE_METHODS:
        problems.append(
            f"Value '{method}' at 'method' failed to satisfy constraint: Member must satisfy enum "
            f"value set: [{', '.join(INVOKE_METHODS)}]"
        )
    if problems:
        raise validation_error(
            f"{len(problems)} validation error(s) detected: " + "; ".join(problems)
        )
    assert isinstance(path, str)
    assert isinstance(method, str)
    # The path stays under the API root: no traversal, and query strings go in QueryParameters.
    if ".." in path.split("/") or any(char in path for char in "?#\\") or "://" in path:
        raise validation_error(f"Path {path!r} must be a path under the Airflow REST API root")
    return (path if path.startswith("/") else f"/{path}"), method


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError as error:
        raise validation_error(f"The request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise validation_error("The request body must be a JSON object")
    return body


def _int_query(query: Mapping[str, list[str]], name: str, *, default: int) -> int:
    values = query.get(name)
    if not values or values[0] == "":
        return default
    try:
        return int(values[0])
    except ValueError as error:
        raise validation_error(f"Value at '{name}' is not a valid number") from error


def _fault_message(shape: str) -> str:
    return {
        "ThrottlingException": "Rate exceeded",
        "InternalServerException": "An internal error occurred (injected fault).",
        "ServiceUnavailableException": "Service unavailable (injected fault).",
        "AccessDeniedException": "User is not authorized to perform this action (injected fault).",
    }.get(shape, f"{shape} (injected fault)")


def _request_id_header() -> dict[str, str]:
    return {"x-amzn-RequestId": str(uuid.uuid4())}


def _json_response(status: int, body: Any) -> HttpResponse:
    headers = {"Content-Type": "application/json", **_request_id_header()}
    return HttpResponse(status, json_dumps(body), headers)


def _error_response(error: MwaaError) -> HttpResponse:
    headers = {
        "Content-Type": "application/json",
        **_request_id_header(),
        "x-amzn-ErrorType": error.shape,
    }
    return HttpResponse(error.status, json_dumps(error.body()), headers)
