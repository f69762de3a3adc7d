"""The api template snippet wires every route of the app, with IAM on all but webhooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.unit.http.test_app import ROUTES

SNIPPET = Path(__file__).resolve().parents[3] / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads !Ref, !GetAtt, !Sub ... as plain values (their meaning is not under test here)."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _any_tag)


def snippet() -> dict[str, Any]:
    return yaml.load(SNIPPET.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)


def test_every_route_of_the_app_is_an_http_api_event_of_the_function() -> None:
    events = snippet()["Resources"]["ApiFunction"]["Properties"]["Events"]

    wired = {
        (event["Properties"]["Method"].lower(), event["Properties"]["Path"])
        for event in events.values()
        if event["Type"] == "HttpApi"
    }

    assert wired == ROUTES


def test_only_the_webhook_route_skips_iam() -> None:
    template = snippet()
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"].values()

    unauthenticated = [
        event["Properties"]["Path"]
        for event in events
        if event["Properties"].get("Auth", {}).get("Authorizer") == "NONE"
    ]

    assert unauthenticated == ["/v1/webhooks/{name}"]
    auth = template["Resources"]["HttpApi"]["Properties"]["Auth"]
    assert auth == {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}
