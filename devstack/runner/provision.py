"""Create the template's resources in moto (S3, SQS, EventBridge, Scheduler, SSM) and DynamoDB.

Resources are created as the template declares them (keys, indexes, TTL, queue attributes,
redrive policies, rules and targets), under the local names the resolver gives them. The
buckets named in an ``aws.s3`` rule's event pattern are created too (they stand for existing
buckets in AWS) with EventBridge notifications on, so that an object put there travels
S3 -> EventBridge -> SQS as in AWS.

`function_environment` gives each function its variables for the local stack: the
template's, plus the endpoint variables botocore honours (``AWS_ENDPOINT_URL_<SERVICE ID>``),
dummy credentials and the caller's extras.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.runner.intrinsics import LocalResource
from devstack.runner.template import LocalTemplate, ScheduleSpec

logger = logging.getLogger(__name__)

MOTO_SERVICES: Final = ("s3", "sqs", "events", "scheduler", "ssm", "secretsmanager", "sts")
DUMMY_CREDENTIALS: Final = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
    "AWS_SESSION_TOKEN": "testing",
}
_SCHEDULER_ROLE: Final = "arn:aws:iam::{account}:role/dagtrigger-local-scheduler"
_QUEUE_ATTRIBUTES: Final = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
)
_TABLE_FIELDS: Final = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "ProvisionedThroughput",
    "StreamSpecification",
)
_RULE_TARGET_FIELDS: Final = (
    "Id",
    "Arn",
    "Input",
    "InputPath",
    "InputTransformer",
    "SqsParameters",
)


def endpoint_variable(service: str) -> str:
    """botocore's per-service endpoint variable: AWS_ENDPOINT_URL_ + the service id, snake-cased."""
    service_id = botocore.session.get_session().get_service_model(service).service_id
    return "AWS_ENDPOINT_URL_" + str(service_id).replace(" ", "_").upper()


def stack_environment(
    *,
    moto_endpoint: str,
    dynamodb_endpoint: str,
    region: str,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables every function shares: endpoints, dummy credentials, region, extras."""
    variables = {endpoint_variable(service): moto_endpoint for service in MOTO_SERVICES}
    variables[endpoint_variable("dynamodb")] = dynamodb_endpoint
    variables.update(DUMMY_CREDENTIALS)
    variables.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region})
    # X-Ray has no daemon here; Powertools' tracer would only warn on every segment.
    variables["POWERTOOLS_TRACE_DISABLED"] = "true"
    variables.update(extra_env or {})
    return variables


@dataclass(frozen=True)
class LocalStackResources:
    """What was created: logical id -> local resource, and the queues by ARN."""

    resources: Mapping[str, LocalResource]
    queue_urls: Mapping[str, str] = field(default_factory=dict)
    source_buckets: tuple[str, ...] = ()

    def __getitem__(self, logical_id: str) -> LocalResource:
        return self.resources[logical_id]

    def queue_url(self, queue_arn: str) -> str:
        try:
            return self.queue_urls[queue_arn]
        except KeyError:
            raise KeyError(f"no local queue with ARN {queue_arn}") from None


def aws_client(service: str, *, endpoint_url: str, region: str) -> Any:
    """A boto3 client for the local stack with explicit endpoint and dummy credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )


class Provisioner:
    """Creates a LocalTemplate's resources; safe to run again on the same servers."""

    def __init__(
        self, template: LocalTemplate, *, moto_endpoint: str, dynamodb_endpoint: str
    ) -> None:
        self._template = template
        self._resolver = template.resolver
        region = self._resolver.pseudo.region
        self._s3 = aws_client("s3", endpoint_url=moto_endpoint, region=region)
        self._sqs = aws_client("sqs", endpoint_url=moto_endpoint, region=region)
        self._events = aws_client("events", endpoint_url=moto_endpoint, region=region)
        self._scheduler = aws_client("scheduler", endpoint_url=moto_endpoint, region=region)
        self._ssm = aws_client("ssm", endpoint_url=moto_endpoint, region=region)
        self._dynamodb = aws_client("dynamodb", endpoint_url=dynamodb_endpoint, region=region)

    def provision(self) -> LocalStackResources:
        created: dict[str, LocalResource] = {}
        for logical_id in self._template.resources_of_type("AWS::DynamoDB::Table"):
            created[logical_id] = self._create_table(logical_id)
        queue_urls = self._create_queues(created)
        buckets = self._create_buckets(created)
        source_buckets = self._create_rules(created)
        for name in source_buckets:
            self._ensure_bucket(name, versioned=False, eventbridge=True)
        self._create_ssm_parameters(created)
        self._create_schedules(created)
        for logical_id in self._template.resolver.active_resources():
            created.setdefault(logical_id, self._resolver.resource(logical_id))
        return LocalStackResources(created, queue_urls, tuple(sorted({*source_buckets, *buckets})))

    # -- DynamoDB ---------------------------------------------------------------------------

    def _create_table(self, logical_id: str) -> LocalResource:
        local = self._resolver.resource(logical_id)
        properties = self._properties(logical_id)
        request = {key: properties[key] for key in _TABLE_FIELDS if key in properties}
        if request.get("BillingMode") == "PAY_PER_REQUEST":
            for index in request.get("GlobalSecondaryIndexes", []):
                index.pop("ProvisionedThroughput", None)
        for index in request.get("GlobalSecondaryIndexes", []):
            index.pop("ContributorInsightsSpecification", None)
        try:
            self._dynamodb.create_table(TableName=local.name, **request)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
            logger.info("table %s exists already", local.name)
        self._dynamodb.get_waiter("table_exists").wait(
            TableName=local.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            self._enable_ttl(local.name, ttl["AttributeName"])
        return local

    def _enable_ttl(self, table_name: str, attribute: str) -> None:
        current = self._dynamodb.describe_time_to_live(TableName=table_name)
        if current["TimeToLiveDescription"].get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return
        self._dynamodb.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
        )

    # -- SQS --------------------------------------------------------------------------------

    def _create_queues(self, created: dict[str, LocalResource]) -> dict[str, str]:
        queue_urls: dict[str, str] = {}
        redrive: dict[str, dict[str, str]] = {}
        for logical_id in self._template.resources_of_type("AWS::SQS::Queue"):
            local = self._resolver.resource(logical_id)
            properties = self._properties(logical_id)
            attributes = {
                key: _attribute_text(properties[key])
                for key in _QUEUE_ATTRIBUTES
                if key in properties
            }
            url = self._sqs.create_queue(QueueName=local.name, Attributes=attributes)["QueueUrl"]
            created[logical_id] = LocalResource(
                local.logical_id,
                local.type,
                local.name,
                local.arn,
                url,
                {**local.attributes, "QueueUrl": url},
                url,
            )
            queue_urls[local.arn] = url
            policies: dict[str, str] = {
                key: json.dumps(properties[key])
                for key in ("RedrivePolicy", "RedriveAllowPolicy")
                if key in properties
            }
            if policies:
                redrive[url] = policies
        # After every queue exists, so a redrive policy may name any of them.
        for url, policies in redrive.items():
            self._sqs.set_queue_attributes(QueueUrl=url, Attributes=policies)
        return queue_urls

    # -- S3 ---------------------------------------------------------------------------------

    def _create_buckets(self, created: dict[str, LocalResource]) -> list[str]:
        names = []
        for logical_id in self._template.resources_of_type("AWS::S3::Bucket"):
            local = self._resolver.resource(logical_id)
            properties = self._properties(logical_id)
            versioning = (properties.get("VersioningConfiguration") or {}).get("Status")
            eventbridge = (
                (properties.get("NotificationConfiguration") or {}).get("EventBridgeConfiguration")
                or {}
            ).get("EventBridgeEnabled", False)
            self._ensure_bucket(
                local.name, versioned=versioning == "Enabled", eventbridge=bool(eventbridge)
            )
            created[logical_id] = local
            names.append(local.name)
        return names

    def _ensure_bucket(self, name: str, *, versioned: bool, eventbridge: bool) -> None:
        try:
            self._s3.create_bucket(Bucket=name)
        except ClientError as error:
            if error.response["Error"]["Code"] not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise
        if versioned:
            self._s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            )
        if eventbridge:
            self._s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )

    # -- EventBridge ------------------------------------------------------------------------

    def _create_rules(self, created: dict[str, LocalResource]) -> list[str]:
        source_buckets: list[str] = []
        for logical_id in self._template.resources_of_type("AWS::Events::Rule"):
            local = self._resolver.resource(logical_id)
            properties = self._properties(logical_id)
            pattern = properties.get("EventPattern")
            if pattern is None:
                continue  # schedule rules: the runner fires schedules itself
            bus = properties.get("EventBusName")
            rule = {
                "Name": local.name,
                "EventPattern": json.dumps(pattern),
                "State": properties.get("State", "ENABLED"),
                **(
                    {"Description": properties["Description"]}
                    if "Description" in properties
                    else {}
                ),
                **({"EventBusName": bus} if bus else {}),
            }
            self._events.put_rule(**rule)
            targets = [
                {key: target[key] for key in _RULE_TARGET_FIELDS if key in target}
                for target in properties.get("Targets") or []
            ]
            if targets:
                self._events.put_targets(
                    Rule=local.name, Targets=targets, **({"EventBusName": bus} if bus else {})
                )
            created[logical_id] = local
            source_buckets.extend(_s3_bucket_names(pattern))
        return sorted(set(source_buckets))

    # -- SSM --------------------------------------------------------------------------------

    def _create_ssm_parameters(self, created: dict[str, LocalResource]) -> None:
        for logical_id in self._template.resources_of_type("AWS::SSM::Parameter"):
            local = self._resolver.resource(logical_id)
            properties = self._properties(logical_id)
            self._ssm.put_parameter(
                Name=local.name,
                Value=str(properties.get("Value", "")),
                Type=properties.get("Type", "String"),
                Overwrite=True,
            )
            created[logical_id] = local

    # -- Scheduler --------------------------------------------------------------------------

    def _create_schedules(self, created: dict[str, LocalResource]) -> None:
        for logical_id in self._template.resources_of_type("AWS::Scheduler::ScheduleGroup"):
            local = self._resolver.resource(logical_id)
            try:
                self._scheduler.create_schedule_group(Name=local.name)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConflictException":
                    raise
            created[logical_id] = local
        account = self._resolver.pseudo.account_id
        for function in self._template.functions.values():
            for schedule in function.schedules:
                if schedule.kind == "ScheduleV2":
                    self._create_schedule(schedule, function.arn, account)

    def _create_schedule(self, schedule: ScheduleSpec, function_arn: str, account: str) -> None:
        target: dict[str, Any] = {
            "Arn": function_arn,
            "RoleArn": _SCHEDULER_ROLE.format(account=account),
        }
        if schedule.input is not None:
            target["Input"] = schedule.input
        window: dict[str, Any] = (
            {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": schedule.flexible_window_minutes}
            if schedule.flexible_window_minutes
            else {"Mode": "OFF"}
        )
        request = {
            "Name": schedule.name,
            "GroupName": schedule.group_name,
            "ScheduleExpression": schedule.expression,
            "ScheduleExpressionTimezone": schedule.timezone,
            "FlexibleTimeWindow": window,
            "Target": target,
            "State": "ENABLED" if schedule.enabled else "DISABLED",
        }
        try:
            self._scheduler.create_schedule(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConflictException":
                raise
            self._scheduler.update_schedule(**request)

    def _properties(self, logical_id: str) -> dict[str, Any]:
        definition = self._resolver.resources_section[logical_id]
        resolved: dict[str, Any] = self._resolver.resolve(
            definition.get("Properties") or {}, f"Resources.{logical_id}.Properties"
        )
        return resolved


def _s3_bucket_names(pattern: Mapping[str, Any]) -> list[str]:
    """The exact bucket names an ``aws.s3`` event pattern matches (prefix matchers are skipped)."""
    if "aws.s3" not in (pattern.get("source") or []):
        return []
    names = ((pattern.get("detail") or {}).get("bucket") or {}).get("name") or []
    return [name for name in names if isinstance(name, str) and name]


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)
