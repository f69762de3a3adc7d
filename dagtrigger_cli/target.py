"""Which dagtrigger a command talks to: a deployed stack, found from its CloudFormation
outputs (``--stack``), or the local stack that ``make up`` runs (its ``up.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import typer
from botocore.config import Config

from dagtrigger_cli.output import fail
from devstack.local_state import UP_STATE, read_state, running_stack_pid

LOCAL_STATE_FILE = UP_STATE
#: the stack outputs a command may need, by what the command calls them
STACK_OUTPUTS = {
    "table": "TriggerHistoryTableName",
    "queue_url": "S3EventsQueueUrl",
    "dlq_url": "S3EventsDeadLetterQueueUrl",
    "api_url": "ApiUrl",
}
_CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3})


@dataclass(frozen=True)
class Target:
    """One dagtrigger deployment: where its API, table and queues are, and how to reach them."""

    name: str
    session: boto3.Session
    table: str
    queue_url: str
    dlq_url: str
    api_url: str
    bucket: str | None = None
    #: service -> endpoint URL, for the local stack's emulated services
    endpoints: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    @property
    def is_local(self) -> bool:
        return bool(self.endpoints)

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` for this deployment, created once."""
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoints.get(service), config=_CLIENT_CONFIG
            )
        return self._clients[service]

    def history_table(self) -> Any:
        resource = self.session.resource(
            "dynamodb", endpoint_url=self.endpoints.get("dynamodb"), config=_CLIENT_CONFIG
        )
        return resource.Table(self.table)


@dataclass(frozen=True)
class TargetOptions:
    """The global options that pick a target (``dagtrigger --stack NAME --region R ...``)."""

    stack: str | None = None
    region: str | None = None
    profile: str | None = None
    #: the local stack's state file (default: ``make up``'s)
    state_file: Path | None = None


def resolve(options: TargetOptions) -> Target:
    """The deployed stack named by ``--stack``, else the running local stack, else an error."""
    if options.stack:
        return deployed_stack(options)
    state_file = options.state_file or LOCAL_STATE_FILE
    if state_file.exists():
        return local_stack(state_file)
    fail(
        "no dagtrigger to talk to: pass --stack NAME (a deployed stack, or DAGTRIGGER_STACK) "
        "or start the local stack with `make up`"
    )


def deployed_stack(options: TargetOptions) -> Target:
    session = boto3.Session(profile_name=options.profile, region_name=options.region)
    if session.region_name is None:
        fail("no AWS region: pass --region, or set AWS_REGION or a profile's region")
    assert options.stack is not None
    cloudformation = session.client("cloudformation", config=_CLIENT_CONFIG)
    stacks = cloudformation.describe_stacks(StackName=options.stack)["Stacks"]
    outputs = {
        output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])
    }
    missing = sorted(name for name in STACK_OUTPUTS.values() if name not in outputs)
    if missing:
        fail(
            f"stack {options.stack!r} in {session.region_name} has no output "
            f"{', '.join(missing)}: is it a dagtrigger stack?"
        )
    found = {name: outputs[output] for name, output in STACK_OUTPUTS.items()}
    return Target(
        name=options.stack, session=session, bucket=outputs.get("SourceBucketName"), **found
    )


def local_stack(state_file: Path) -> Target:
    """The local stack described by ``up.json`` (written by ``make up`` when it is ready)."""
    state = read_state(state_file)
    if state is None:
        fail(f"{state_file} does not describe a running local stack: run `make up`")
    if running_stack_pid(state) is None:
        fail(
            f"the local stack in {state_file} is not running (its process is gone): "
            "run `make down && make up`"
        )
    try:
        resources = state["resources"]
        session = boto3.Session(
            aws_access_key_id="devstack",
            aws_secret_access_key="devstack",  # noqa: S106 - the local stack's dummy credential
            region_name=resources["region"],
        )
        moto = resources["moto_endpoint"]
        return Target(
            name="local",
            session=session,
            table=resources["table"],
            queue_url=resources["queue_url"],
            dlq_url=resources["dlq_url"],
            api_url=resources["api_url"],
            bucket=resources.get("bucket"),
            endpoints={
                "s3": moto,
                "sqs": moto,
                "events": moto,
                "scheduler": moto,
                "dynamodb": resources["dynamodb_endpoint"],
            },
        )
    except (KeyError, TypeError, AttributeError) as error:
        missing = error.args[0] if isinstance(error, KeyError) else "resources"
        fail(
            f"{state_file} does not give the local stack's {missing} (a stack started by an "
            "older `make up`?): restart it with `make down && make up`"
        )


def target_of(context: typer.Context) -> Target:
    """The target the global options name, resolved once per command."""
    root = context.find_root()
    if not isinstance(root.obj, dict):
        root.obj = {}
    if "target" not in root.obj:
        root.obj["target"] = resolve(root.obj.get("options") or TargetOptions())
    target: Target = root.obj["target"]
    return target
