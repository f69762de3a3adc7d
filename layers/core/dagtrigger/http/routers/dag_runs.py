"""POST /v1/dags/{dag_id}/runs: start a DAG run, safely retried with an Idempotency-Key."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dagtrigger.api import ApiDependencies, trigger_dag_run
from dagtrigger.api.idempotency import IDEMPOTENCY_HEADER, check_idempotency_key
from dagtrigger.api.models import DagRunRequest, TriggerAccepted
from dagtrigger.http.dependencies import (
    IAM_SIGNED,
    api_dependencies,
    caller_identity,
    documented,
)
from dagtrigger.http.responses import json_response
from dagtrigger.ids import DAG_ID_PATTERN

router = APIGatewayHttpRouter()

#: header telling a client that this answer repeats the one given to an earlier request
REPLAYED_HEADER = "Idempotent-Replayed"


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
    deps: Annotated[ApiDependencies, Depends(api_dependencies)],
    caller: Annotated[str, Depends(caller_identity)],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            description="1-255 visible ASCII characters naming this request",
        ),
    ] = None,
) -> Response[TriggerAccepted]:
    accepted = trigger_dag_run(
        dag_id,
        body,
        caller=caller,
        idempotency_key=check_idempotency_key(idempotency_key),
        deps=deps,
    )
    headers = {REPLAYED_HEADER: "true"} if accepted.replayed else None
    return json_response(202, accepted.body, headers=headers)
