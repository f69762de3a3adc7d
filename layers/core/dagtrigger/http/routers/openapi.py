"""GET /v1/openapi.json: this API's OpenAPI document, made from the routes themselves."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

import dagtrigger
from dagtrigger.http.request import IAM_SIGNED, SIGV4

router = APIGatewayHttpRouter()


@router.get(
    "/v1/openapi.json",
    summary="This API's OpenAPI document",
    tags=["Meta"],
    security=IAM_SIGNED,
)
def openapi_document() -> Response[str]:
    return Response(200, content_type=content_types.APPLICATION_JSON, body=openapi_json())


@cache
def openapi_json() -> str:
    """The document of the resolver this router is part of."""
    # Imported on the first read of the document: the OpenAPI models take ~40 ms to import,
    # which every cold start of the API function would pay otherwise.
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    resolver = router.api_resolver
    if not isinstance(resolver, APIGatewayHttpResolver):
        raise RuntimeError("the OpenAPI router answers only once a resolver includes it")
    return resolver.get_openapi_json_schema(
        title="dagtrigger",
        version=dagtrigger.__version__,
        description="Start Apache Airflow DAG runs on Amazon MWAA and read their history. "
        "Management routes are IAM-signed (SigV4, service execute-api); webhooks are "
        "authenticated by their signatures. Errors are application/problem+json (RFC 9457).",
        security_schemes={
            SIGV4: APIKey(
                name="Authorization",
                in_=APIKeyIn.header,
                description="AWS Signature Version 4 for the execute-api service",
            )
        },
    )
