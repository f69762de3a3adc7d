"""Template discovery: short tags, parameters, conditions, intrinsics, functions and events."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.runner.cfn_yaml import TemplateError, load_template
from devstack.runner.intrinsics import TemplateResolver
from devstack.runner.template import LocalTemplate, discover, merge_globals, verify_layer_importable

from .conftest import FIXTURE_TEMPLATE

REPO_ROOT = Path(__file__).resolve().parents[3]


def resolver_for(tmp_path: Path, text: str, **overrides: str) -> TemplateResolver:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return TemplateResolver(load_template(path), parameter_overrides=overrides)


SMALL = """
Parameters:
  Names: {Type: CommaDelimitedList, Default: "a,b"}
  Size: {Type: Number, Default: 5, MinValue: 1, MaxValue: 10}
  Mode: {Type: String, Default: fast, AllowedValues: [fast, slow]}
Mappings:
  Tiers: {fast: {memory: "512"}}
Conditions:
  IsFast: !Equals [!Ref Mode, fast]
  IsSlow: !Not [!Condition IsFast]
  Both: !And [!Condition IsFast, !Or [!Condition IsSlow, !Equals [!Ref Size, "5"]]]
Resources:
  Queue: {Type: AWS::SQS::Queue, Properties: {QueueName: !Sub "${AWS::StackName}-q"}}
  Table: {Type: AWS::DynamoDB::Table}
  Bucket: {Type: AWS::S3::Bucket}
  SlowOnly: {Type: AWS::SQS::Queue, Condition: IsSlow}
"""


def test_short_tags_load_as_long_form_intrinsics(tmp_path: Path) -> None:
    # Given every short tag CloudFormation defines
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n  R:\n    Type: X\n    Properties:\n"
        "      A: !Ref P\n      B: !GetAtt Q.Arn\n      C: !Sub 'x-${P}'\n"
        "      D: !If [C, 1, 2]\n      E: !Join [',', [a, b]]\n"
        "      F: !Select [0, !Split [',', 'a,b']]\n"
        "      G: !Base64 text\n      H: !GetAZs ''\n      I: !ImportValue shared\n"
        "      J: !Cidr [!Ref P, 2, 8]\n      K: !FindInMap [M, a, b]\n      L: !Condition C\n"
    )
    # When it is loaded
    properties = load_template(path)["Resources"]["R"]["Properties"]
    # Then each becomes its long form
    assert properties["A"] == {"Ref": "P"}
    assert properties["B"] == {"Fn::GetAtt": ["Q", "Arn"]}
    assert properties["C"] == {"Fn::Sub": "x-${P}"}
    assert properties["D"] == {"Fn::If": ["C", 1, 2]}
    assert properties["F"] == {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}
    assert properties["I"] == {"Fn::ImportValue": "shared"}
    assert properties["J"] == {"Fn::Cidr": [{"Ref": "P"}, 2, 8]}
    assert properties["L"] == {"Condition": "C"}


def test_a_file_without_resources_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("Parameters: {}\n")
    with pytest.raises(TemplateError, match=r"empty\.yaml: a template must be a mapping"):
        load_template(path)


def test_parameters_take_defaults_and_overrides(tmp_path: Path) -> None:
    resolver = resolver_for(tmp_path, SMALL, Mode="slow")
    assert resolver.parameters == {"Names": ["a", "b"], "Size": "5", "Mode": "slow"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Mode": "medium"}, r"Parameters.Mode: 'medium' is not one of"),
        ({"Size": "11"}, r"Parameters.Size: 11 is above MaxValue 10"),
        ({"Size": "many"}, r"Parameters.Size: 'many' is not a number"),
        ({"Unknown": "x"}, r"parameter_overrides: Unknown not declared"),
    ],
)
def test_bad_parameter_values_are_refused_by_name(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        resolver_for(tmp_path, SMALL, **overrides)


def test_conditions_combine(tmp_path: Path) -> None:
    fast = resolver_for(tmp_path, SMALL)
    slow = resolver_for(tmp_path, SMALL, Mode="slow")
    assert (fast.condition("IsFast"), fast.condition("IsSlow"), fast.condition("Both")) == (
        True,
        False,
        True,
    )
    assert (slow.condition("IsFast"), slow.condition("Both")) == (False, False)
    assert "SlowOnly" not in fast.active_resources()
    assert "SlowOnly" in slow.active_resources()


def test_refs_and_attributes_give_local_names_and_moto_style_arns(tmp_path: Path) -> None:
    resolver = resolver_for(tmp_path, SMALL)
    resolve = resolver.resolve
    assert resolve({"Ref": "Table"}, "t") == "dagtrigger-local-Table"
    assert resolve({"Ref": "Bucket"}, "t") == "dagtrigger-local-bucket"
    assert resolve({"Ref": "Queue"}, "t") == "http://127.0.0.1:5000/123456789012/dagtrigger-local-q"
    assert resolve({"Fn::GetAtt": ["Queue", "Arn"]}, "t") == (
        "arn:aws:sqs:us-east-1:123456789012:dagtrigger-local-q"
    )
    assert resolve({"Fn::Sub": "${Table.Arn}/index/*"}, "t") == (
        "arn:aws:dynamodb:us-east-1:123456789012:table/dagtrigger-local-Table/index/*"
    )


def test_functions_resolve_with_no_value_dropped(tmp_path: Path) -> None:
    resolver = resolver_for(tmp_path, SMALL)
    value = {
        "joined": {"Fn::Join": ["+", {"Ref": "Names"}]},
        "picked": {"Fn::Select": ["1", {"Fn::Split": ["/", "x/y/z"]}]},
        "mapped": {"Fn::FindInMap": ["Tiers", {"Ref": "Mode"}, "memory"]},
        "chosen": {"Fn::If": ["IsSlow", "slow", {"Ref": "AWS::NoValue"}]},
        "listed": ["keep", {"Fn::If": ["IsFast", {"Ref": "AWS::NoValue"}, "drop"]}],
        "literal": {"Fn::Sub": ["${!Literal}-${Var}", {"Var": {"Ref": "AWS::Region"}}]},
    }
    assert resolver.resolve(value, "t") == {
        "joined": "a+b",
        "picked": "y",
        "mapped": "512",
        "listed": ["keep"],
        "literal": "${Literal}-us-east-1",
    }


def test_unresolvable_intrinsics_fail_where_they_are_used(tmp_path: Path) -> None:
    resolver = resolver_for(tmp_path, SMALL)
    with pytest.raises(TemplateError, match=r"Outputs.X: Fn::ImportValue cannot be resolved"):
        resolver.resolve({"Fn::ImportValue": "shared"}, "Outputs.X")
    with pytest.raises(
        TemplateError, match="refers to SlowOnly, whose condition 'IsSlow' is false"
    ):
        resolver.resolve({"Ref": "SlowOnly"}, "Outputs.Y")
    with pytest.raises(TemplateError, match="has no attribute 'Nope'"):
        resolver.resolve({"Fn::GetAtt": ["Queue", "Nope"]}, "Outputs.Z")


def test_globals_merge_like_sam() -> None:
    merged = merge_globals(
        {"Timeout": 3, "Layers": ["g"], "Environment": {"Variables": {"A": "1", "B": "1"}}},
        {"Timeout": 9, "Layers": ["f"], "Environment": {"Variables": {"B": "2"}}},
    )
    assert merged == {
        "Timeout": 9,
        "Layers": ["g", "f"],
        "Environment": {"Variables": {"A": "1", "B": "2"}},
    }


def test_fixture_functions_are_discovered_with_their_events(
    fixture_template: LocalTemplate,
) -> None:
    # Given the fixture template with default parameters
    functions = fixture_template.functions
    # Then the conditional function is left out and the others are resolved
    assert sorted(functions) == ["ApiFunction", "RecorderFunction", "ScheduledFunction"]
    recorder = functions["RecorderFunction"]
    assert recorder.handler_file.name == "recorder.py"
    assert (recorder.timeout_seconds, recorder.memory_mb) == (10, 256)
    assert recorder.environment == {
        "TABLE_NAME": "dagtrigger-local-HistoryTable",
        "RESULTS_QUEUE_URL": "http://127.0.0.1:5000/123456789012/dagtrigger-local-ResultsQueue",
        "STAGE": "development",
        "SHARED": "from-function",
    }
    (source,) = recorder.sqs_sources
    assert source.queue_arn == "arn:aws:sqs:us-east-1:123456789012:dagtrigger-local-events"
    assert (source.batch_size, source.report_batch_item_failures, source.maximum_concurrency) == (
        10,
        True,
        2,
    )
    assert [layer.logical_id for layer in recorder.layers] == ["CoreLayer"]


def test_http_routes_take_the_api_default_authorizer_unless_overridden(
    fixture_template: LocalTemplate,
) -> None:
    routes = {
        route.event_id: route for route in fixture_template.function("ApiFunction").http_routes
    }
    assert routes["GetItem"].route_key == "GET /items/{id}"
    assert routes["GetItem"].authorizer == "NONE"
    assert routes["Files"].route_key == "ANY /files/{proxy+}"
    assert routes["Files"].authorizer == "AWS_IAM"
    assert {route.api_logical_id for route in routes.values()} == {"HttpApi"}


def test_schedule_v2_events_are_discovered(fixture_template: LocalTemplate) -> None:
    scheduled = fixture_template.function("ScheduledFunction")
    (schedule,) = scheduled.schedules
    assert schedule.name == "nightly-ingest"
    assert (
        schedule.arn == "arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly-ingest"
    )
    assert (schedule.expression, schedule.timezone) == ("cron(0 2 * * ? *)", "Europe/Paris")
    assert schedule.flexible_window_minutes == 15
    assert "<aws.scheduler.scheduled-time>" in (schedule.input or "")
    assert scheduled.async_maximum_retries == 1
    assert scheduled.dead_letter_queue_arn == (
        "arn:aws:sqs:us-east-1:123456789012:dagtrigger-local-EventsDeadLetterQueue"
    )


def test_overrides_change_conditions_and_names() -> None:
    template = discover(FIXTURE_TEMPLATE, parameter_overrides={"Env": "prod"})
    assert "ProdOnlyFunction" in template.functions
    assert template.function("ApiFunction").environment["STAGE"] == "production"


def test_unknown_function_names_the_known_ones(fixture_template: LocalTemplate) -> None:
    with pytest.raises(TemplateError, match="functions: ApiFunction, RecorderFunction"):
        fixture_template.function("Nope")


def test_the_core_layer_imports_from_its_content_uri(fixture_template: LocalTemplate) -> None:
    (layer,) = fixture_template.function("RecorderFunction").layers
    verify_layer_importable(layer)  # raises if dagtrigger came from anywhere else


def test_a_layer_whose_package_imports_from_elsewhere_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dagtrigger").mkdir()
    (tmp_path / "dagtrigger" / "__init__.py").write_text("")
    from devstack.runner.template import LayerSpec

    with pytest.raises(TemplateError, match="does not import from"):
        verify_layer_importable(LayerSpec("Layer", tmp_path, "arn"))


@pytest.mark.skipif(not (REPO_ROOT / "template.yaml").exists(), reason="no template.yaml yet")
def test_the_real_template_resolves_for_the_local_stack() -> None:
    # Given the project's template with an environment name and existing buckets
    template = discover(
        REPO_ROOT / "template.yaml",
        parameter_overrides={"MwaaEnvironmentNames": "local-env", "SourceBucketNames": "landing"},
    )
    # Then every function has a handler file, resolved variables and its event sources
    assert template.functions
    for spec in template.functions.values():
        assert spec.handler_file.is_file()
        assert all(isinstance(value, str) for value in spec.environment.values())
    s3_function = template.function("S3EventsFunction")
    assert s3_function.environment["TABLE_NAME"] == template.resource("TriggerHistoryTable").name
    (source,) = s3_function.sqs_sources
    assert source.queue_arn == template.resource("S3EventsQueue").arn
    assert source.report_batch_item_failures
