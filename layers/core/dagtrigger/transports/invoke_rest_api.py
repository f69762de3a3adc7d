"""MWAA ``InvokeRestApi``: Airflow's REST API through the MWAA control plane (Airflow >= 2.4.3).

The ``Path`` is relative to the Airflow API root MWAA picks for the environment's version and is
at most 64 characters (botocore model ``RestApiPath``; botocore itself checks only the minimum).
Airflow's 4xx answers arrive as ``RestApiClientException`` and 5xx as ``RestApiServerException``,
both carrying ``RestApiStatusCode`` and ``RestApiResponse``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from dagtrigger.clock import utc_now
from dagtrigger.transports.airflow_api import AirflowApiTransport, ApiReply, Json
from dagtrigger.transports.base import EnvironmentRef
from dagtrigger.transports.factory import TransportParts
from dagtrigger.transports.mwaa_control_plane import (
    AirflowMajorResolver,
    client_error_code,
    mwaa_errors_classified,
)
from dagtrigger.transports.rate_budget import SharedRateBudget, rate_budget_from

#: botocore's ``RestApiPath`` maximum length
INVOKE_REST_API_MAX_PATH = 64
_AIRFLOW_ANSWER_CODES = frozenset({"RestApiClientException", "RestApiServerException"})


class InvokeRestApiTransport(AirflowApiTransport):
    """``AirflowTransport`` over MWAA ``InvokeRestApi`` for one environment.

    Each Airflow call is one ``mwaa.invoke_rest_api`` call; Airflow's refusals become replies.
    """

    max_path_length = INVOKE_REST_API_MAX_PATH
    path_too_long_code = "dag_id_too_long_for_invoke_rest_api"

    def __init__(
        self,
        environment: EnvironmentRef,
        mwaa_client: Any,
        *,
        resolver: AirflowMajorResolver | None = None,
        now: Callable[[], datetime] = utc_now,
        rate_budget: SharedRateBudget | None = None,
    ) -> None:
        super().__init__(environment, now=now, rate_budget=rate_budget)
        self._client = mwaa_client
        self._resolver = resolver or AirflowMajorResolver(mwaa_client)

    def airflow_major(self) -> int:
        return self._resolver.major(self.environment)

    def call(self, method: str, path: str, *, body: Json | None, query: Json | None) -> ApiReply:
        name = self.environment.name
        arguments: dict[str, Any] = {"Name": name, "Path": path, "Method": method}
        if body is not None:
            arguments["Body"] = dict(body)
        if query is not None:
            arguments["QueryParameters"] = dict(query)
        with mwaa_errors_classified(environment=name, action=f"InvokeRestApi {method} {path}"):
            try:
                response = self._client.invoke_rest_api(**arguments)
            except ClientError as error:
                if client_error_code(error) not in _AIRFLOW_ANSWER_CODES:
                    raise
                return _reply_from_error(error)
        return ApiReply(
            int(response.get("RestApiStatusCode", 200)), response.get("RestApiResponse")
        )


def _reply_from_error(error: ClientError) -> ApiReply:
    response = error.response
    status = response.get("RestApiStatusCode")
    if status is None:  # not expected, but the exception class alone still tells 4xx from 5xx
        status = 500 if client_error_code(error) == "RestApiServerException" else 400
    body = response.get("RestApiResponse")
    if body is None:
        body = response.get("Error", {}).get("Message", "")
    return ApiReply(int(status), body)


def build(environment: EnvironmentRef, parts: TransportParts) -> InvokeRestApiTransport:
    return InvokeRestApiTransport(
        environment, parts.mwaa_client(), rate_budget=rate_budget_from(parts)
    )
