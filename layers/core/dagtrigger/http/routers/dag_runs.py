"""POST /v1/dags/{dag_id}/runs: start a DAG run, safely retried with an Idempotency-Key."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dagtrigger.dependencies import Dependencies
from dagtrigger.http.bodies import TriggerAccepted, accepted_response
from dagtrigger.http.problems import documented
from dagtrigger.http.request import IAM_SIGNED, api_dependencies, caller_identity
from dagtrigger.ids import DAG_ID_PATTERN
from dagtrigger.sources.api.service import IDEMPOTENCY_KEY_INPUT, DagRunRequest, trigger_dag_run

router = APIGatewayHttpRouter()

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_KEY_INPUT[1],
        description="1-255 visible ASCII characters naming this request",
    ),
]


@router.post(
    "/v1/dags/<dag_id>/runs",
    status_code=202,
    summary="Start a DAG run",
    description="Starts `dag_id` with `conf`. With an `Idempotency-Key`, a retry of the same "
    "request gets the same answer and starts nothing new; the same key with a different "
    "request is refused (422).",
    tags=["DAG runs"],
    security=IAM_SIGNED,
    responses=documented(202, 400, 404, 409, 413, 422, 503),
)
def start_dag_run(
    dag_id: Annotated[str, Path(pattern=DAG_ID_PATTERN, description="the DAG to run")],
    body: Annotated[DagRunRequest, Body()],
    deps: Annotated[Dependencies, Depends(api_dependencies)],
    caller: Annotated[str, Depends(caller_identity)],
    idempotency_key: IdempotencyKey = None,
) -> Response[TriggerAccepted]:
    accepted = trigger_dag_run(
        dag_id, body, caller=caller, idempotency_key=idempotency_key, deps=deps
    )
    return accepted_response(accepted)
