"""The dashboard and the alarms draw and watch only metrics that exist.

Custom metrics: what the code publishes is read from the code itself (``ast``): the Powertools
``Metrics`` object's namespace and service (its one dimension) in ``dagtrigger.observability``,
and every ``MetricName`` constant that reaches a publishing call (``count``, ``record_*`` and the
helpers that pass a name on to them). AWS metrics must name a resource of this stack with the
dimension that service uses. A checker returns every problem it finds, and broken dashboards fed
to it show that it catches a misspelt name, a wrong dimension or a resource the stack lacks.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dagtrigger import observability
from dagtrigger.observability import MetricName
from tests.template.test_template_rules import (
    REGION,
    ResolvedStack,
    dead_letter_sources,
    function_timeout,
    logical_id_of,
    stack,
)

pytestmark = pytest.mark.template

REPO_ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY_PATH = REPO_ROOT / "layers" / "core" / "dagtrigger" / "observability.py"
CODE_ROOTS = (REPO_ROOT / "layers" / "core" / "dagtrigger", REPO_ROOT / "functions")
DASHBOARD_ID = "OperationsDashboard"
ALARM_EMAIL = "ops@example.com"
ALARM_TOPIC_ARN = f"arn:aws:sns:{REGION}:123456789012:ops"

#: Powertools calls that would add dimensions or metrics this inventory does not read
UNREAD_METRIC_CALLS = {
    "add_metric",
    "add_dimension",
    "add_dimensions",
    "set_default_dimensions",
    "single_metric",
}
#: AWS namespace -> the dimension the dashboard may use, and the resource type (and the
#: attribute, None for Ref) whose value it takes
AWS_DIMENSIONS = {
    "AWS/Lambda": ("FunctionName", "AWS::Serverless::Function", None),
    "AWS/SQS": ("QueueName", "AWS::SQS::Queue", "QueueName"),
    "AWS/ApiGateway": ("ApiId", "AWS::Serverless::HttpApi", None),
}
#: the metrics each AWS service publishes with that dimension (the ones worth drawing here)
AWS_METRIC_NAMES = {
    "AWS/Lambda": {
        "Invocations",
        "Errors",
        "Throttles",
        "Duration",
        "ConcurrentExecutions",
        "AsyncEventAge",
    },
    "AWS/SQS": {
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "NumberOfMessagesSent",
        "NumberOfMessagesReceived",
        "NumberOfMessagesDeleted",
    },
    "AWS/ApiGateway": {"Count", "4xx", "5xx", "Latency", "IntegrationLatency"},
}
#: the template's short tag for a metric widget's "same as the row above"
SAME_AS_ABOVE = "."


# ---------------------------------------------------------------------------------------------
# What the code publishes, read from the code
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedMetrics:
    namespace: str
    #: values of the one dimension, service (one per function if the code named none)
    services: frozenset[str]
    names: frozenset[str]
    #: log messages the code writes (string literals given to logger.<level>)
    log_messages: frozenset[str]
    #: publishing calls whose metric name could not be told (the inventory would be wrong)
    unread: tuple[str, ...]


def metric_name_constants() -> dict[str, str]:
    return {
        attribute: value
        for attribute, value in vars(MetricName).items()
        if attribute.isupper() and isinstance(value, str)
    }


def code_files() -> Iterator[Path]:
    for root in CODE_ROOTS:
        yield from sorted(root.rglob("*.py"))


def metric_constant(node: ast.AST) -> str | None:
    """``MetricName.X`` -> its value."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "MetricName"
    ):
        constants = metric_name_constants()
        return constants.get(node.attr, f"<unknown MetricName.{node.attr}>")
    return None


def call_name(call: ast.Call) -> str | None:
    """``f(...)`` -> f, ``x.f(...)`` -> f."""
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


@dataclass(frozen=True)
class Publisher:
    """A function that publishes a metric: always ``metric``, or the one passed as ``parameter``."""

    metric: str | None = None
    #: (position among the parameters after self or cls, name)
    parameter: tuple[int, str] | None = None

    def argument(self, call: ast.Call) -> ast.AST | None:
        """The metric name this call passes (methods are called as ``self.f``: no self here)."""
        assert self.parameter is not None
        position, name = self.parameter
        for given in call.keywords:
            if given.arg == name:
                return given.value
        return call.args[position] if position < len(call.args) else None


def parameters_of(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    names = [parameter.arg for parameter in function.args.args]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def observability_publishers() -> tuple[dict[str, Publisher], ast.Call]:
    """observability.py's publishing functions (those calling add_metric) and its Metrics(...)."""
    tree = ast.parse(OBSERVABILITY_PATH.read_text(encoding="utf-8"))
    publishers: dict[str, Publisher] = {}
    (metrics_call,) = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and call_name(node) == "Metrics"
    ]
    for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
        for call in (node for node in ast.walk(function) if isinstance(node, ast.Call)):
            if call_name(call) != "add_metric":
                continue
            name = Publisher(parameter=(0, "name")).argument(call)
            constant = metric_constant(name) if name is not None else None
            if constant is not None:
                publishers[function.name] = Publisher(metric=constant)
            elif isinstance(name, ast.Name) and name.id in parameters_of(function):
                position = parameters_of(function).index(name.id)
                publishers[function.name] = Publisher(parameter=(position, name.id))
    return publishers, metrics_call


def module_mappings(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level dicts whose values are MetricName constants (``_RUN_METRICS = {...}``)."""
    mappings = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign):
            targets, value = [statement.target], statement.value
        else:
            continue
        if not isinstance(value, ast.Dict):
            continue
        constants = [metric_constant(item) for item in value.values]
        if constants and all(constants):
            for target in targets:
                if isinstance(target, ast.Name):
                    mappings[target.id] = [str(constant) for constant in constants]
    return mappings


@dataclass
class ModuleMetrics:
    names: set[str]
    unread: list[str]
    log_messages: set[str]


def published_by_module(
    source: str, where: str, imported: dict[str, Publisher], *, may_add_metrics: bool = False
) -> ModuleMetrics:
    """What one module publishes and logs; ``imported``: observability's publishers."""
    tree = ast.parse(source)
    # observability's functions count only when imported from it and called by their own name
    # (``count(...)``, never ``text.count(...)``)
    by_name = {
        alias.asname or alias.name: imported[alias.name]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "dagtrigger.observability"
        for alias in node.names
        if alias.name in imported
    }
    functions = [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    # this module's helpers that pass a metric name on (``self._failed(MetricName.X, ...)``)
    helpers: dict[str, Publisher] = {}

    def publisher_of(call: ast.Call) -> Publisher | None:
        if isinstance(call.func, ast.Name) and call.func.id in by_name:
            return by_name[call.func.id]
        return helpers.get(call_name(call) or "")

    while True:
        found = {}
        for function in functions:
            if function.name in helpers:
                continue
            names = parameters_of(function)
            for call in (node for node in ast.walk(function) if isinstance(node, ast.Call)):
                publisher = publisher_of(call)
                given = publisher.argument(call) if publisher and publisher.parameter else None
                if isinstance(given, ast.Name) and given.id in names:
                    found[function.name] = Publisher(parameter=(names.index(given.id), given.id))
        if not found:
            break
        helpers.update(found)

    mappings = module_mappings(tree)
    result = ModuleMetrics(names=set(), unread=[], log_messages=set())

    def read_call(call: ast.Call, enclosing: str | None) -> None:
        called = call_name(call)
        if called in UNREAD_METRIC_CALLS and not may_add_metrics:
            result.unread.append(f"{where}:{call.lineno} calls {called} outside observability.py")
        if (
            isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "logger"
            and call.args
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
        ):
            result.log_messages.add(call.args[0].value)
        publisher = publisher_of(call)
        if publisher is None:
            return
        if publisher.metric is not None:
            result.names.add(publisher.metric)
            return
        given = publisher.argument(call)
        constant = metric_constant(given) if given is not None else None
        helper = helpers.get(enclosing or "")
        if constant is not None:
            result.names.add(constant)
        elif (
            isinstance(given, ast.Subscript)
            and isinstance(given.value, ast.Name)
            and given.value.id in mappings
        ):
            result.names.update(mappings[given.value.id])
        elif isinstance(given, ast.Name) and helper and helper.parameter[1] == given.id:  # type: ignore[index]
            pass  # a helper passing its parameter on: its callers are read
        else:
            result.unread.append(
                f"{where}:{call.lineno}: cannot tell which metric {called}() publishes"
            )

    def visit(node: ast.AST, enclosing: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Call):
                read_call(child, enclosing)
            is_function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            visit(child, child.name if is_function else enclosing)  # type: ignore[union-attr]

    visit(tree, None)
    return result


def published_metrics(resolved: ResolvedStack) -> PublishedMetrics:
    publishers, metrics_call = observability_publishers()
    keywords = {
        keyword.arg: keyword.value.value
        for keyword in metrics_call.keywords
        if isinstance(keyword.value, ast.Constant)
    }
    names: set[str] = set()
    unread: list[str] = []
    messages: set[str] = set()
    for path in code_files():
        found = published_by_module(
            path.read_text(encoding="utf-8"),
            str(path.relative_to(REPO_ROOT)),
            publishers,
            may_add_metrics=path == OBSERVABILITY_PATH,
        )
        names |= found.names
        unread += found.unread
        messages |= found.log_messages
    # Powertools takes the Metrics(...) arguments over the POWERTOOLS_* variables; without one,
    # each function publishes with its own environment's value
    environments = [
        {
            **resolved.resolve(
                resolved.template["Globals"]["Function"]["Environment"]["Variables"]
            ),
            **function["Properties"].get("Environment", {}).get("Variables", {}),
        }
        for function in resolved.resources("AWS::Serverless::Function").values()
    ]
    namespaces = {
        keywords.get("namespace") or env["POWERTOOLS_METRICS_NAMESPACE"] for env in environments
    }
    assert len(namespaces) == 1, f"the functions publish to several namespaces: {namespaces}"
    services = {keywords.get("service") or env["POWERTOOLS_SERVICE_NAME"] for env in environments}
    return PublishedMetrics(
        namespace=namespaces.pop(),
        services=frozenset(services),
        names=frozenset(names),
        log_messages=frozenset(messages),
        unread=tuple(unread),
    )


# ---------------------------------------------------------------------------------------------
# The checker
# ---------------------------------------------------------------------------------------------


def metric_problems(
    namespace: str,
    name: str,
    dimensions: dict[str, str],
    published: PublishedMetrics,
    resolved: ResolvedStack,
) -> list[str]:
    """Why this metric (namespace, name, dimensions) is not one of the stack's, if it is not."""
    metric = f"{namespace}/{name} {dimensions}"
    if namespace == published.namespace:
        problems = []
        if name not in published.names:
            problems.append(f"{metric}: the code publishes no metric {name!r}")
        if set(dimensions) != {"service"}:
            problems.append(f"{metric}: the code's metrics have the one dimension service")
        elif dimensions["service"] not in published.services:
            problems.append(
                f"{metric}: the code publishes service={sorted(published.services)}, "
                f"not {dimensions['service']!r}"
            )
        return problems
    if namespace not in AWS_DIMENSIONS:
        return [f"{metric}: namespace {namespace!r} is neither the code's nor one drawn here"]
    problems = []
    if name not in AWS_METRIC_NAMES[namespace]:
        problems.append(
            f"{metric}: {namespace} has no metric {name!r} (known: {AWS_METRIC_NAMES[namespace]})"
        )
    dimension, resource_type, attribute = AWS_DIMENSIONS[namespace]
    if set(dimensions) != {dimension}:
        return [*problems, f"{metric}: {namespace} metrics are drawn by {dimension}"]
    value = dimensions[dimension]
    resources = resolved.resources(resource_type)
    expected = f"<{logical_id_of(value)}.{attribute}>" if attribute else f"<{logical_id_of(value)}>"
    if logical_id_of(value) not in resources or value != expected:
        problems.append(
            f"{metric}: {value!r} is not the {dimension} of a {resource_type} of the stack"
        )
    return problems


def metric_rows(widget: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(namespace, name, dimensions) of each metric row of a metric widget."""
    previous: list[Any] = []
    for row in widget["properties"].get("metrics", []):
        fields = [item for item in row if not isinstance(item, dict)]
        if not fields:
            continue  # a math expression row: it draws the metrics it names by id
        fields = [
            previous[index] if item == SAME_AS_ABOVE and index < len(previous) else item
            for index, item in enumerate(fields)
        ]
        previous = fields
        namespace, name, *pairs = (str(item) for item in fields)
        yield namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True))


def function_log_groups(resolved: ResolvedStack) -> dict[str, str]:
    """Function -> its log group's name as the dashboard sees it (``<LogGroupId>``)."""
    return {
        function_id: function["Properties"]["LoggingConfig"]["LogGroup"]
        for function_id, function in resolved.resources("AWS::Serverless::Function").items()
    }


def log_widget_problems(
    widget: dict[str, Any], published: PublishedMetrics, resolved: ResolvedStack
) -> list[str]:
    query = widget["properties"]["query"]
    title = widget["properties"].get("title")
    problems = []
    sources = re.findall(r"SOURCE '([^']+)'", query)
    log_groups = set(function_log_groups(resolved).values())
    if set(sources) != log_groups:
        problems.append(
            f"{title}: queries {sorted(sources)}, "
            f"not every function's log group {sorted(log_groups)}"
        )
    for message in re.findall(r'filter message = "([^"]+)"', query):
        if message not in published.log_messages:
            problems.append(f"{title}: the code never logs the message {message!r}")
    for log_group in re.findall(r'strcontains\(@log, "([^"]+)"\)', query):
        if log_group not in sources:
            problems.append(f"{title}: counts lines of {log_group!r}, which it does not query")
    return problems


def dashboard_problems(
    body: dict[str, Any], published: PublishedMetrics, resolved: ResolvedStack
) -> list[str]:
    """Every metric, log query and alarm the dashboard shows that the stack does not have."""
    problems = []
    alarm_arns = {f"<{alarm_id}.Arn>" for alarm_id in resolved.resources("AWS::CloudWatch::Alarm")}
    for widget in body["widgets"]:
        kind, properties = widget["type"], widget["properties"]
        if widget["x"] + widget["width"] > 24:
            problems.append(f"{properties.get('title')}: wider than the dashboard's 24 columns")
        if kind in {"metric", "log"} and properties.get("region") != REGION:
            problems.append(f"{properties.get('title')}: not drawn from the stack's region")
        if kind == "metric":
            for namespace, name, dimensions in metric_rows(widget):
                problems += metric_problems(namespace, name, dimensions, published, resolved)
        elif kind == "log":
            problems += log_widget_problems(widget, published, resolved)
        elif kind == "alarm":
            shown = set(properties["alarms"])
            if shown != alarm_arns:
                problems.append(
                    f"alarm widget: missing {sorted(alarm_arns - shown)}, "
                    f"not alarms of the stack {sorted(shown - alarm_arns)}"
                )
        elif kind != "text":
            problems.append(f"widget of unknown type {kind!r}")
    return problems


def alarm_problems(
    alarm: dict[str, Any], published: PublishedMetrics, resolved: ResolvedStack
) -> list[str]:
    properties = alarm["Properties"]
    if "Metrics" in properties:  # metric math: each metric it reads
        return [
            problem
            for query in properties["Metrics"]
            if "MetricStat" in query
            for problem in metric_problems(
                query["MetricStat"]["Metric"]["Namespace"],
                query["MetricStat"]["Metric"]["MetricName"],
                {
                    d["Name"]: d["Value"]
                    for d in query["MetricStat"]["Metric"].get("Dimensions", [])
                },
                published,
                resolved,
            )
        ]
    dimensions = {d["Name"]: d["Value"] for d in properties.get("Dimensions", [])}
    return metric_problems(
        properties["Namespace"], properties["MetricName"], dimensions, published, resolved
    )


def dashboard_body(resolved: ResolvedStack) -> dict[str, Any]:
    (dashboard,) = resolved.resources("AWS::CloudWatch::Dashboard").values()
    body: dict[str, Any] = json.loads(dashboard["Properties"]["DashboardBody"])
    return body


def drawn_metrics(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    return [
        row
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for row in metric_rows(widget)
    ]


def widget_titled(body: dict[str, Any], start: str) -> dict[str, Any]:
    (widget,) = [
        w for w in body["widgets"] if str(w["properties"].get("title", "")).startswith(start)
    ]
    return widget


def horizontal_annotation(widget: dict[str, Any], label_start: str) -> float:
    (annotation,) = [
        a
        for a in widget["properties"]["annotations"]["horizontal"]
        if a["label"].startswith(label_start)
    ]
    return float(annotation["value"])


SHAPES = [
    pytest.param({}, id="defaults"),
    pytest.param(
        {
            "AlarmEmail": ALARM_EMAIL,
            "AlarmTopicArn": ALARM_TOPIC_ARN,
            "SourceBucketNames": "landing",
        },
        id="email-topic-buckets",
    ),
    pytest.param({"MwaaTransport": "cli", "CreateSourceBucket": "true"}, id="cli-created-bucket"),
]


@pytest.fixture(scope="module")
def default_stack(raw_template: dict[str, Any]) -> ResolvedStack:
    return stack(raw_template)


@pytest.fixture(scope="module")
def published(default_stack: ResolvedStack) -> PublishedMetrics:
    return published_metrics(default_stack)


# ---------------------------------------------------------------------------------------------
# The inventory itself
# ---------------------------------------------------------------------------------------------


def test_the_inventory_reads_every_metric_the_code_publishes(published: PublishedMetrics) -> None:
    # Every publishing call names its metric in a way the inventory can follow
    assert published.unread == ()
    # And what it reads agrees with the running module: the namespace and service Powertools uses
    assert published.namespace == observability.metrics.namespace
    assert published.services == {observability.metrics.service}
    # And every MetricName constant is published somewhere (none is dead, none is missed)
    assert published.names == set(metric_name_constants().values())
    assert "DAG run triggered" in published.log_messages


def test_the_inventory_sees_a_name_it_cannot_follow() -> None:
    # Given a module publishing one metric by its constant, one through a helper, one through a
    # mapping, and one whose name comes from a call, plus a str.count that publishes nothing
    source = """
from dagtrigger.observability import MetricName, count, record_latency
_BY_STATE = {"ok": MetricName.RUN_SUCCESS}
def name_of(x): return MetricName.TRIGGERED
class Notifier:
    @staticmethod
    def _failed(metric, what): count(metric)
    def tell(self): return self._failed(MetricName.RUN_EVENT_FAILED, "no")
def publish(state, text):
    count(MetricName.DUPLICATE)
    count(_BY_STATE[state])
    record_latency(3.0)
    text.count("x")
    count(name_of(1))
"""
    publishers, _ = observability_publishers()

    # When the inventory reads it
    found = published_by_module(source, "probe.py", publishers)

    # Then it follows the constant, the helper, the mapping and record_latency, and reports the
    # call it cannot follow
    assert found.names == {
        MetricName.DUPLICATE,
        MetricName.RUN_EVENT_FAILED,
        MetricName.RUN_SUCCESS,
        MetricName.MWAA_LATENCY,
    }
    assert found.unread == ["probe.py:14: cannot tell which metric count() publishes"]


# ---------------------------------------------------------------------------------------------
# The dashboard
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", SHAPES)
def test_every_metric_the_dashboard_draws_is_one_the_stack_has(
    raw_template: dict[str, Any], published: PublishedMetrics, overrides: dict[str, str]
) -> None:
    # Given a deployment shape and its dashboard
    resolved = stack(raw_template, **overrides)
    body = dashboard_body(resolved)

    # Then each metric is the code's (namespace, name, service) or an AWS metric of a resource
    # of the stack; the log query reads the functions' log groups for a line the code writes;
    # and the alarm widget shows every alarm
    assert drawn_metrics(body)
    assert dashboard_problems(body, published, resolved) == []


def test_the_dashboard_draws_what_an_operator_watches(
    default_stack: ResolvedStack, published: PublishedMetrics
) -> None:
    body = dashboard_body(default_stack)
    drawn = drawn_metrics(body)
    custom = {name for namespace, name, _ in drawn if namespace == published.namespace}
    aws = {(namespace, name, tuple(dims.values())) for namespace, name, dims in drawn}

    # What became of the events, the runs and the reconciler
    assert {
        MetricName.TRIGGERED,
        MetricName.DUPLICATE,
        MetricName.IGNORED,
        MetricName.REJECTED,
        MetricName.TRIGGER_FAILED,
        MetricName.ACCESS_REFUSED,
        MetricName.MWAA_LATENCY,
        MetricName.RUN_SUCCESS,
        MetricName.RUN_FAILED,
        MetricName.RUN_UNKNOWN,
        MetricName.RECONCILE_DEFERRED,
        MetricName.OLDEST_OPEN_TRIGGER_AGE,
    } <= custom
    # Airflow's latency at the median and the tail
    latency = widget_titled(body, "Airflow (MWAA) call latency")
    assert {row[-1]["stat"] for row in latency["properties"]["metrics"]} == {"p50", "p99"}
    # The S3 queue's age and every dead-letter queue's depth
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", ("<S3EventsQueue.QueueName>",)) in aws
    for queue_id in dead_letter_sources(default_stack):
        assert (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            (f"<{queue_id}.QueueName>",),
        ) in aws
    # Errors and throttles of every function
    for function_id in default_stack.resources("AWS::Serverless::Function"):
        for name in ("Errors", "Throttles"):
            assert ("AWS/Lambda", name, (f"<{function_id}>",)) in aws
    # Triggers told apart by function: a log query over every function's log group
    (by_function,) = [w for w in body["widgets"] if w["type"] == "log"]
    assert 'filter message = "DAG run triggered"' in by_function["properties"]["query"]


def test_the_dashboards_lines_follow_the_stacks_settings(raw_template: dict[str, Any]) -> None:
    # Given thresholds other than the defaults
    resolved = stack(
        raw_template,
        RejectionAlarmThreshold="7",
        QueueAgeAlarmSeconds="600",
        ScheduleLatenessAlarmSeconds="900",
    )
    body = dashboard_body(resolved)
    reconciler = resolved.resources("AWS::Serverless::Function")["ReconcilerFunction"]
    horizon_hours = int(
        reconciler["Properties"]["Environment"]["Variables"]["RECONCILE_HORIZON_HOURS"]
    )

    # Then each line sits where its alarm or setting is
    assert horizontal_annotation(widget_titled(body, "Rejections"), "rejections alarm") == 7
    assert horizontal_annotation(widget_titled(body, "S3 events queue"), "queue age alarm") == 600
    assert horizontal_annotation(widget_titled(body, "Schedule lateness"), "lateness alarm") == 900
    lag = widget_titled(body, "Reconciler lag")
    assert horizontal_annotation(lag, "horizon") == horizon_hours * 3600
    assert f"({horizon_hours} h)" in lag["properties"]["annotations"]["horizontal"][0]["label"]
    passes = widget_titled(body, "Reconciler passes")
    assert horizontal_annotation(passes, "timeout") == function_timeout(resolved, reconciler) * 1000
    # And it is drawn in the stack's region, named after the stack
    (dashboard,) = resolved.resources("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"dagtrigger-{REGION}"


def replace_in_rows(namespace: str, old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        for widget in body["widgets"]:
            for row in widget["properties"].get("metrics", []):
                if row[0] == namespace:
                    row[:] = [new if item == old else item for item in row]

    return mutate


def set_log_query(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        for widget in body["widgets"]:
            if widget["type"] == "log":
                widget["properties"]["query"] = widget["properties"]["query"].replace(old, new)

    return mutate


def set_service(value: str) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        for widget in body["widgets"]:
            for row in widget["properties"].get("metrics", []):
                if row[2] == "service":
                    row[3] = value

    return mutate


def set_namespace(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        for widget in body["widgets"]:
            for row in widget["properties"].get("metrics", []):
                if row[0] == old:
                    row[0] = new

    return mutate


def leave_alone(body: dict[str, Any]) -> None:
    """The control: the dashboard as the template has it."""


def drop_first_alarm(body: dict[str, Any]) -> None:
    for widget in body["widgets"]:
        if widget["type"] == "alarm":
            widget["properties"]["alarms"].pop(0)


def add_dimension(body: dict[str, Any]) -> None:
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if row[1] == MetricName.TRIGGERED:
                row[4:4] = ["function_name", "s3-events"]


@pytest.mark.parametrize(
    ("mutate", "caught"),
    [
        pytest.param(
            replace_in_rows("dagtrigger", "TriggerFailed", "TriggerFailure"),
            "no metric 'TriggerFailure'",
            id="misspelt-metric",
        ),
        pytest.param(set_service("s3-events"), "not 's3-events'", id="wrong-service"),
        pytest.param(
            set_namespace("dagtrigger", "dagtriger"), "neither the code's", id="misspelt-namespace"
        ),
        pytest.param(add_dimension, "one dimension service", id="extra-dimension"),
        pytest.param(leave_alone, None, id="unchanged"),
        pytest.param(
            replace_in_rows("AWS/Lambda", "Throttles", "Throttle"),
            "no metric 'Throttle'",
            id="misspelt-aws-metric",
        ),
        pytest.param(
            replace_in_rows("AWS/Lambda", "<ApiFunction>", "<ApiLogGroup>"),
            "not the FunctionName",
            id="not-a-function",
        ),
        pytest.param(
            replace_in_rows("AWS/SQS", "<S3EventsQueue.QueueName>", "<S3EventsQueue>"),
            "not the QueueName",
            id="queue-url-not-name",
        ),
        pytest.param(
            replace_in_rows(
                "AWS/SQS", "<SchedulesDeadLetterQueue.QueueName>", "<MissingQueue.QueueName>"
            ),
            "not the QueueName",
            id="queue-not-in-stack",
        ),
        pytest.param(
            set_log_query("DAG run triggered", "DAG run started"),
            "never logs",
            id="log-message-not-written",
        ),
        pytest.param(
            set_log_query("SOURCE '<ApiLogGroup>' | ", ""),
            "not every function's log group",
            id="log-group-missing",
        ),
        pytest.param(drop_first_alarm, "missing", id="alarm-not-shown"),
    ],
)
def test_the_checker_catches_a_broken_dashboard(
    default_stack: ResolvedStack,
    published: PublishedMetrics,
    mutate: Callable[[dict[str, Any]], None],
    caught: str | None,
) -> None:
    # Given the stack's dashboard, broken in one way (or not at all: the control)
    body = copy.deepcopy(dashboard_body(default_stack))
    mutate(body)

    # When the checker reads it
    problems = dashboard_problems(body, published, default_stack)

    # Then it says what is wrong, and only when something is
    if caught is None:
        assert problems == []
    else:
        assert problems
        assert any(caught in problem for problem in problems), problems


# ---------------------------------------------------------------------------------------------
# The alarms
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", SHAPES)
def test_every_alarm_watches_a_metric_the_stack_has(
    raw_template: dict[str, Any], published: PublishedMetrics, overrides: dict[str, str]
) -> None:
    resolved = stack(raw_template, **overrides)
    alarms = resolved.resources("AWS::CloudWatch::Alarm")
    assert alarms
    for alarm_id, alarm in alarms.items():
        assert alarm_problems(alarm, published, resolved) == [], alarm_id


def test_the_alarm_checker_catches_a_misspelt_metric(
    default_stack: ResolvedStack, published: PublishedMetrics
) -> None:
    alarm = copy.deepcopy(default_stack.resources("AWS::CloudWatch::Alarm")["TriggerFailedAlarm"])
    alarm["Properties"]["MetricName"] = "TriggersFailed"
    assert any(
        "no metric 'TriggersFailed'" in p for p in alarm_problems(alarm, published, default_stack)
    )


def custom_alarms(
    resolved: ResolvedStack, published: PublishedMetrics
) -> dict[str, dict[str, Any]]:
    """Metric name -> the properties of the alarm on it (one each)."""
    alarms: dict[str, dict[str, Any]] = {}
    for alarm in resolved.resources("AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        if properties.get("Namespace") == published.namespace:
            assert properties["MetricName"] not in alarms, properties["MetricName"]
            alarms[properties["MetricName"]] = properties
    return alarms


def test_trigger_failures_rejections_and_the_reconciler_are_alarmed(
    raw_template: dict[str, Any], published: PublishedMetrics
) -> None:
    resolved = stack(raw_template, RejectionAlarmThreshold="25")
    alarms = custom_alarms(resolved, published)

    # Trigger failures: any, for two 5-minute periods in a row
    failed = alarms[MetricName.TRIGGER_FAILED]
    assert (failed["Statistic"], failed["Period"], failed["EvaluationPeriods"]) == ("Sum", 300, 2)
    assert failed["DatapointsToAlarm"] == 2
    assert float(failed["Threshold"]) == 0
    assert failed["ComparisonOperator"] == "GreaterThanThreshold"
    # Rejections: above the parameter, per 5 minutes
    rejected = alarms[MetricName.REJECTED]
    assert (rejected["Statistic"], rejected["Period"], rejected["EvaluationPeriods"]) == (
        "Sum",
        300,
        1,
    )
    assert float(rejected["Threshold"]) == 25
    assert rejected["ComparisonOperator"] == "GreaterThanThreshold"
    # The reconciler: its function's errors
    assert any(
        alarm["Properties"]["MetricName"] == "Errors"
        and alarm["Properties"]["Dimensions"]
        == [{"Name": "FunctionName", "Value": "<ReconcilerFunction>"}]
        for alarm in resolved.resources("AWS::CloudWatch::Alarm").values()
    )


@pytest.mark.parametrize(
    ("overrides", "expected_actions"),
    [
        pytest.param({}, [], id="nobody"),
        pytest.param({"AlarmEmail": ALARM_EMAIL}, ["<AlarmEmailTopic>"], id="email"),
        pytest.param({"AlarmTopicArn": ALARM_TOPIC_ARN}, [ALARM_TOPIC_ARN], id="topic"),
        pytest.param(
            {"AlarmEmail": ALARM_EMAIL, "AlarmTopicArn": ALARM_TOPIC_ARN},
            [ALARM_TOPIC_ARN, "<AlarmEmailTopic>"],
            id="both",
        ),
    ],
)
def test_every_alarm_notifies_the_alarm_topics_given_and_only_those(
    raw_template: dict[str, Any], overrides: dict[str, str], expected_actions: list[str]
) -> None:
    # Given a deployment with an alarm e-mail, a topic, both or neither
    resolved = stack(raw_template, **overrides)
    alarms = resolved.resources("AWS::CloudWatch::Alarm")
    assert alarms

    # Then every alarm notifies exactly those, going into alarm and back to OK
    for alarm_id, alarm in alarms.items():
        assert alarm["Properties"].get("AlarmActions", []) == expected_actions, alarm_id
        assert alarm["Properties"].get("OKActions", []) == expected_actions, alarm_id

    # And the e-mail topic exists only with an address, which it mails, fed by this account's
    # alarms only
    email_resources = {"AlarmEmailTopic", "AlarmEmailTopicPolicy", "AlarmEmailSubscription"}
    created = {
        resource_id
        for resource_id in email_resources
        if resource_id
        in resolved.resources("AWS::SNS::Topic", "AWS::SNS::TopicPolicy", "AWS::SNS::Subscription")
    }
    if "AlarmEmail" not in overrides:
        assert created == set()
        return
    assert created == email_resources
    subscription = resolved.resources("AWS::SNS::Subscription")["AlarmEmailSubscription"][
        "Properties"
    ]
    assert subscription == {
        "TopicArn": "<AlarmEmailTopic>",
        "Protocol": "email",
        "Endpoint": ALARM_EMAIL,
    }
    policy = resolved.resources("AWS::SNS::TopicPolicy")["AlarmEmailTopicPolicy"]["Properties"]
    (allow,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert (
        allow["Condition"]["ArnLike"]["aws:SourceArn"]
        == f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:*"
    )


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("", True), (ALARM_EMAIL, True), ("ops team@example.com", False), ("ops", False)],
)
def test_alarm_email_parameter_accepts_an_address_or_nothing(
    raw_template: dict[str, Any], value: str, accepted: bool
) -> None:
    pattern = raw_template["Parameters"]["AlarmEmail"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, {"DashboardName", "DashboardUrl"}, id="no-email"),
        pytest.param(
            {"AlarmEmail": ALARM_EMAIL},
            {"DashboardName", "DashboardUrl", "AlarmEmailTopicArn"},
            id="email",
        ),
    ],
)
def test_the_dashboard_and_the_alarm_topic_are_outputs(
    raw_template: dict[str, Any], overrides: dict[str, str], expected: set[str]
) -> None:
    resolved = stack(raw_template, **overrides)
    outputs = {
        name: resolved.resolve(output["Value"])
        for name, output in raw_template["Outputs"].items()
        if name in {"DashboardName", "DashboardUrl", "AlarmEmailTopicArn"}
        and ("Condition" not in output or resolved.condition(output["Condition"]))
    }
    assert set(outputs) == expected
    assert outputs["DashboardName"] == f"<{DASHBOARD_ID}>"
    assert outputs["DashboardUrl"] == (
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}"
        f"#dashboards/dashboard/<{DASHBOARD_ID}>"
    )


@pytest.mark.parametrize(
    ("partition", "console"),
    [
        ("aws", "console.aws.amazon.com"),
        ("aws-cn", "console.amazonaws.cn"),
        ("aws-us-gov", "console.amazonaws-us-gov.com"),
    ],
)
def test_the_dashboard_url_uses_the_console_of_the_partition(
    raw_template: dict[str, Any], partition: str, console: str
) -> None:
    resolved = stack(raw_template, **{"AWS::Partition": partition})
    url = resolved.resolve(raw_template["Outputs"]["DashboardUrl"]["Value"])
    assert url.startswith(f"https://{REGION}.{console}/cloudwatch/home?region={REGION}#")
