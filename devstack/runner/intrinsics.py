"""Resolve a template's parameters, conditions and intrinsic functions to local values.

Every resource gets a deterministic local physical name (its own name property if the template
sets one, else ``<stack name>-<LogicalId>``) and moto-style ARNs and URLs, so that ``!Ref``,
``!GetAtt`` and ``!Sub`` give what the running local stack uses. Only what is asked for is
resolved: an intrinsic that has no local meaning (``Fn::ImportValue``, ``Fn::Cidr``) fails
only where it is needed, with the path to it in the message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from devstack.runner.cfn_yaml import TemplateError
from devstack.runner.parameters import parameter_values

DEFAULT_STACK_NAME: Final = "dagtrigger-local"
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_ACCOUNT_ID: Final = "123456789012"  # moto's default account
_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]*)\}")


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Final = _NoValue()

# Resource type -> the property that names it, when the template chooses the name.
_NAME_PROPERTIES: Final[Mapping[str, str]] = {
    "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Events::Rule": "Name",
    "AWS::Events::EventBus": "Name",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::SSM::Parameter": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::IAM::Role": "RoleName",
    "AWS::CloudWatch::Alarm": "AlarmName",
}


@dataclass(frozen=True)
class LocalResource:
    """One resource as the local stack names it: what ``Ref`` and ``GetAtt`` return."""

    logical_id: str
    type: str
    name: str
    arn: str
    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None

    def attribute(self, name: str, where: str) -> str:
        if name == "Arn":
            return self.arn
        try:
            return self.attributes[name]
        except KeyError:
            known = ", ".join(["Arn", *sorted(self.attributes)])
            raise TemplateError(
                f"{where}: {self.logical_id} ({self.type}) has no attribute {name!r} locally "
                f"(known: {known})"
            ) from None


@dataclass(frozen=True)
class Pseudo:
    """The pseudo parameters (``AWS::Region`` ...) of the local stack."""

    stack_name: str = DEFAULT_STACK_NAME
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    sqs_endpoint: str = "http://127.0.0.1:5000"

    def value(self, name: str) -> Any:
        values: dict[str, Any] = {
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/"
                f"{self.stack_name}/00000000-0000-0000-0000-000000000000"
            ),
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        return values[name]

    def is_pseudo(self, name: str) -> bool:
        return name.startswith("AWS::")


class TemplateResolver:
    """Parameters, conditions, local names and intrinsic functions of one template."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        parameter_overrides: Mapping[str, str | list[str]] | None = None,
        pseudo: Pseudo | None = None,
    ) -> None:
        self.template = template
        self.pseudo = pseudo or Pseudo()
        self.resources_section: Mapping[str, Any] = template.get("Resources") or {}
        self.parameters = parameter_values(
            template.get("Parameters") or {}, dict(parameter_overrides or {})
        )
        self._conditions: dict[str, bool] = {}
        self._conditions_in_progress: set[str] = set()
        self._local: dict[str, LocalResource] = {}
        self._naming_in_progress: set[str] = set()

    # -- conditions ---------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        """The value of a named condition (evaluated once)."""
        if name in self._conditions:
            return self._conditions[name]
        definitions = self.template.get("Conditions") or {}
        if name not in definitions:
            raise TemplateError(f"Conditions: no condition named {name!r}")
        if name in self._conditions_in_progress:
            raise TemplateError(f"Conditions.{name}: refers to itself")
        self._conditions_in_progress.add(name)
        try:
            value = self._evaluate_condition(definitions[name], f"Conditions.{name}")
        finally:
            self._conditions_in_progress.discard(name)
        self._conditions[name] = value
        return value

    def _evaluate_condition(self, node: Any, where: str) -> bool:
        if isinstance(node, Mapping) and len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Condition":
                return self.condition(argument)
            if key == "Fn::Equals":
                left, right = self._arguments(argument, 2, where, key)
                left, right = self.resolve(left, where), self.resolve(right, where)
                return _as_comparable(left) == _as_comparable(right)
            if key == "Fn::Not":
                (only,) = self._arguments(argument, 1, where, key)
                return not self._evaluate_condition(only, where)
            if key == "Fn::And":
                return all(self._evaluate_condition(item, where) for item in argument)
            if key == "Fn::Or":
                return any(self._evaluate_condition(item, where) for item in argument)
        raise TemplateError(f"{where}: not a condition function: {node!r}")

    def is_active(self, logical_id: str) -> bool:
        """False when the resource has a Condition that is false here."""
        definition = self.resources_section.get(logical_id) or {}
        condition = definition.get("Condition")
        return condition is None or self.condition(condition)

    def active_resources(self, resource_type: str | None = None) -> dict[str, Mapping[str, Any]]:
        """Resources (optionally of one type) whose condition holds, in template order."""
        return {
            logical_id: definition
            for logical_id, definition in self.resources_section.items()
            if (resource_type is None or definition.get("Type") == resource_type)
            and self.is_active(logical_id)
        }

    # -- local names ------------------------------------------------------------------------

    def resource(self, logical_id: str, where: str = "Resources") -> LocalResource:
        """The local name, ARN and attributes of a resource (computed once)."""
        if logical_id in self._local:
            return self._local[logical_id]
        definition = self.resources_section.get(logical_id)
        if definition is None:
            raise TemplateError(f"{where}: no resource or parameter named {logical_id!r}")
        if not self.is_active(logical_id):
            raise TemplateError(
                f"{where}: refers to {logical_id}, whose condition "
                f"{definition.get('Condition')!r} is false with these parameters"
            )
        if logical_id in self._naming_in_progress:
            raise TemplateError(f"{where}: the name of {logical_id} depends on itself")
        self._naming_in_progress.add(logical_id)
        try:
            local = self._name_resource(logical_id, definition)
        finally:
            self._naming_in_progress.discard(logical_id)
        self._local[logical_id] = local
        return local

    def _physical_name(self, logical_id: str, definition: Mapping[str, Any]) -> str:
        resource_type = definition.get("Type", "")
        name_property = _NAME_PROPERTIES.get(resource_type)
        properties = definition.get("Properties") or {}
        if name_property and name_property in properties:
            name = self.resolve(
                properties[name_property], f"Resources.{logical_id}.{name_property}"
            )
            if not isinstance(name, str) or not name:
                raise TemplateError(
                    f"Resources.{logical_id}.{name_property}: must resolve to a non-empty string"
                )
            return name
        name = f"{self.pseudo.stack_name}-{logical_id}"
        return name.lower() if resource_type == "AWS::S3::Bucket" else name

    def _name_resource(self, logical_id: str, definition: Mapping[str, Any]) -> LocalResource:
        resource_type = definition.get("Type", "")
        name = self._physical_name(logical_id, definition)
        region, account = self.pseudo.region, self.pseudo.account_id

        def local(ref: str, arn: str, url: str | None = None, **attributes: str) -> LocalResource:
            return LocalResource(logical_id, resource_type, name, arn, ref, attributes, url)

        if resource_type == "AWS::SQS::Queue":
            url = f"{self.pseudo.sqs_endpoint.rstrip('/')}/{account}/{name}"
            arn = f"arn:aws:sqs:{region}:{account}:{name}"
            return local(url, arn, url, QueueName=name, QueueUrl=url)
        if resource_type == "AWS::DynamoDB::Table":
            arn = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
            return local(name, arn, StreamArn=f"{arn}/stream/1970-01-01T00:00:00.000")
        if resource_type == "AWS::S3::Bucket":
            return local(
                name,
                f"arn:aws:s3:::{name}",
                DomainName=f"{name}.s3.amazonaws.com",
                RegionalDomainName=f"{name}.s3.{region}.amazonaws.com",
            )
        if resource_type in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return local(name, f"arn:aws:lambda:{region}:{account}:function:{name}")
        if resource_type == "AWS::Serverless::LayerVersion":
            arn = f"arn:aws:lambda:{region}:{account}:layer:{name}:1"
            return local(arn, arn)
        if resource_type == "AWS::Events::Rule":
            return local(name, f"arn:aws:events:{region}:{account}:rule/{name}")
        if resource_type == "AWS::Scheduler::ScheduleGroup":
            return local(name, f"arn:aws:scheduler:{region}:{account}:schedule-group/{name}")
        if resource_type == "AWS::SSM::Parameter":
            return local(
                name,
                f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}",
                Type="String",
                Value="",
            )
        if resource_type == "AWS::SecretsManager::Secret":
            arn = f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-{_short_hash(name, 6)}"
            return local(arn, arn, Id=arn)
        if resource_type == "AWS::SNS::Topic":
            arn = f"arn:aws:sns:{region}:{account}:{name}"
            return local(arn, arn, TopicName=name, TopicArn=arn)
        if resource_type == "AWS::Logs::LogGroup":
            return local(name, f"arn:aws:logs:{region}:{account}:log-group:{name}:*")
        if resource_type == "AWS::IAM::Role":
            return local(name, f"arn:aws:iam::{account}:role/{name}", RoleId=_short_hash(name, 21))
        if resource_type in ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"):
            api_id = _short_hash(name, 10)
            endpoint = f"https://{api_id}.execute-api.{region}.amazonaws.com"
            return local(
                api_id,
                f"arn:aws:execute-api:{region}:{account}:{api_id}",
                ApiId=api_id,
                ApiEndpoint=endpoint,
            )
        if resource_type == "AWS::CloudWatch::Alarm":
            return local(name, f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}")
        return local(name, f"arn:aws:local:{region}:{account}:{logical_id}")

    # -- intrinsic functions ----------------------------------------------------------------

    def resolve(self, value: Any, where: str) -> Any:
        """Resolve every intrinsic inside `value`; ``AWS::NoValue`` entries disappear."""
        if isinstance(value, Mapping):
            if len(value) == 1:
                ((key, argument),) = value.items()
                if key == "Ref" or key.startswith("Fn::"):
                    return self._function(key, argument, where)
                if key == "Condition" and isinstance(argument, str):
                    return self.condition(argument)
            resolved = {key: self.resolve(item, f"{where}.{key}") for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        if isinstance(value, list):
            items = [self.resolve(item, f"{where}[{index}]") for index, item in enumerate(value)]
            return [item for item in items if item is not NO_VALUE]
        return value

    def resolve_string(self, value: Any, where: str) -> str:
        resolved = self.resolve(value, where)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, int | float):
            return str(resolved)
        if not isinstance(resolved, str):
            raise TemplateError(f"{where}: expected a string, got {resolved!r}")
        return resolved

    def _arguments(self, argument: Any, count: int, where: str, name: str) -> list[Any]:
        if not isinstance(argument, list) or len(argument) != count:
            raise TemplateError(f"{where}: {name} takes a list of {count}, got {argument!r}")
        return argument

    def _function(self, name: str, argument: Any, where: str) -> Any:
        handlers = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Split": self._split,
            "Fn::Select": self._select,
            "Fn::If": self._if,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": self._base64,
            "Fn::GetAZs": self._get_azs,
            "Fn::Length": self._length,
            "Fn::ToJsonString": self._to_json_string,
        }
        if name in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self._evaluate_condition({name: argument}, where)
        handler = handlers.get(name)
        if handler is None:
            raise TemplateError(f"{where}: {name} cannot be resolved by the local stack")
        return handler(argument, f"{where}.{name}")

    def _ref(self, argument: Any, where: str) -> Any:
        if not isinstance(argument, str):
            raise TemplateError(f"{where}: Ref takes a name, got {argument!r}")
        if self.pseudo.is_pseudo(argument):
            try:
                return self.pseudo.value(argument)
            except KeyError:
                raise TemplateError(f"{where}: unknown pseudo parameter {argument}") from None
        if argument in self.parameters:
            return self.parameters[argument]
        return self.resource(argument, where).ref

    def _get_att(self, argument: Any, where: str) -> str:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        resource_id, attribute = self._arguments(argument, 2, where, "Fn::GetAtt")
        attribute = self.resolve_string(attribute, where)
        return self.resource(resource_id, where).attribute(attribute, where)

    def _sub(self, argument: Any, where: str) -> str:
        variables: Mapping[str, Any] = {}
        if isinstance(argument, list):
            text, raw_variables = self._arguments(argument, 2, where, "Fn::Sub")
            variables = {
                key: self.resolve(item, f"{where}.{key}") for key, item in raw_variables.items()
            }
        else:
            text = argument
        if not isinstance(text, str):
            raise TemplateError(f"{where}: Fn::Sub takes a string, got {text!r}")

        def substitute(match: re.Match[str]) -> str:
            literal, name = match.group(1), match.group(2).strip()
            if literal:
                return "${" + match.group(2) + "}"
            if name in variables:
                return _sub_text(variables[name], where, name)
            if "." in name and not self.pseudo.is_pseudo(name):
                return self._get_att(name.split(".", 1), where)
            return _sub_text(self._ref(name, where), where, name)

        return _SUB_VARIABLE.sub(substitute, text)

    def _join(self, argument: Any, where: str) -> str:
        delimiter, items = self._arguments(argument, 2, where, "Fn::Join")
        resolved = self.resolve(items, where)
        if not isinstance(resolved, list):
            raise TemplateError(f"{where}: Fn::Join needs a list, got {resolved!r}")
        return str(delimiter).join(_join_text(item, where) for item in resolved)

    def _split(self, argument: Any, where: str) -> list[str]:
        delimiter, text = self._arguments(argument, 2, where, "Fn::Split")
        return self.resolve_string(text, where).split(str(delimiter))

    def _select(self, argument: Any, where: str) -> Any:
        index, items = self._arguments(argument, 2, where, "Fn::Select")
        position = int(self.resolve_string(index, where))
        resolved = self.resolve(items, where)
        if not isinstance(resolved, list) or not 0 <= position < len(resolved):
            raise TemplateError(f"{where}: index {position} is outside {resolved!r}")
        return resolved[position]

    def _if(self, argument: Any, where: str) -> Any:
        condition, when_true, when_false = self._arguments(argument, 3, where, "Fn::If")
        chosen = when_true if self.condition(condition) else when_false
        return self.resolve(chosen, where)

    def _find_in_map(self, argument: Any, where: str) -> Any:
        map_name, top, second = (
            self.resolve_string(item, where)
            for item in self._arguments(argument, 3, where, "Fn::FindInMap")
        )
        try:
            return self.resolve(self.template["Mappings"][map_name][top][second], where)
        except (KeyError, TypeError):
            raise TemplateError(f"{where}: Mappings has no {map_name}.{top}.{second}") from None

    def _base64(self, argument: Any, where: str) -> str:
        return base64.b64encode(self.resolve_string(argument, where).encode()).decode()

    def _get_azs(self, argument: Any, where: str) -> list[str]:
        region = self.resolve_string(argument, where) or self.pseudo.region
        return [f"{region}{zone}" for zone in "abc"]

    def _length(self, argument: Any, where: str) -> int:
        resolved = self.resolve(argument, where)
        if not isinstance(resolved, list):
            raise TemplateError(f"{where}: Fn::Length needs a list, got {resolved!r}")
        return len(resolved)

    def _to_json_string(self, argument: Any, where: str) -> str:
        return json.dumps(self.resolve(argument, where), separators=(",", ":"))


def _sub_text(value: Any, where: str, name: str) -> str:
    if isinstance(value, list):
        raise TemplateError(f"{where}: ${{{name}}} is a list; Fn::Sub needs a string")
    return str(value)


def _join_text(item: Any, where: str) -> str:
    if isinstance(item, list | dict):
        raise TemplateError(f"{where}: Fn::Join items must be strings, got {item!r}")
    return str(item)


def _as_comparable(value: Any) -> Any:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _short_hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]
