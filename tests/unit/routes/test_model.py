"""The routes file: what a valid one gives, and how an invalid one is reported (field + line)."""

from __future__ import annotations

import re
import textwrap

import pytest

from dagtrigger.errors import RoutesConfigError
from dagtrigger.routes import S3Route, parse_routes
from dagtrigger.routes.loader import bundled_path
from dagtrigger.transports.base import EnvironmentRef, TransportKind

VALID = textwrap.dedent(
    """\
    version: 1
    environments:
      prod:
        name: my-mwaa-env
        transport: invoke_rest_api
        airflow_major: 3
      selfhosted:
        name: local-airflow
        transport: airflow_rest
        base_url: http://127.0.0.1:8080/
        credentials_secret: dagtrigger/airflow
        allow_plain_http: true
    s3:
      - name: sales-csv
        buckets: [landing]
        prefix: sales/
        suffix: .csv
        regex: '^sales/(?P<day>\\d{4}-\\d{2}-\\d{2})\\.csv$'
        min_size: 1
        max_size: 1000000
        environment: prod
        dag_id: ingest_sales
        conf: {bucket: "{{ bucket }}", size: "{{ size }}", day: "{{ match.day }}"}
      - name: everything-else
        buckets: [landing, archive]
        environment: selfhosted
        dag_id: catch_all.v2
        conf_template: '{"key": {{ key | tojson }}}'
        paused: true
    """
)


def problems_of(text: str) -> str:
    with pytest.raises(RoutesConfigError) as caught:
        parse_routes(text, source="file:/tmp/routes.yaml")
    return str(caught.value)


def test_a_valid_file_gives_typed_routes_and_environments() -> None:
    # Given a routes file using every field
    # When it is parsed
    routes = parse_routes(VALID, source="test")

    # Then routes and environments come back typed, in file order
    assert [route.name for route in routes.s3] == ["sales-csv", "everything-else"]
    first, second = routes.s3
    assert (first.prefix, first.suffix, first.min_size, first.max_size) == (
        "sales/",
        ".csv",
        1,
        1000000,
    )
    assert second.paused is True
    assert second.conf_spec() == '{"key": {{ key | tojson }}}'
    assert routes.environment_ref("selfhosted") == EnvironmentRef(
        alias="selfhosted",
        name="local-airflow",
        transport=TransportKind.AIRFLOW_REST,
        airflow_major=None,
        base_url="http://127.0.0.1:8080",  # trailing slash dropped
        credentials_secret="dagtrigger/airflow",
    )
    assert routes.environment_ref("prod").airflow_major == 3
    assert routes.find_route("everything-else") is second
    assert routes.find_route("missing") is None


def test_an_s3_route_without_conf_sends_the_default_conf() -> None:
    # Given a route with neither conf nor conf_template
    routes = parse_routes(
        VALID.replace(
            '    conf: {bucket: "{{ bucket }}", size: "{{ size }}", day: "{{ match.day }}"}\n', ""
        ),
        source="test",
    )

    # Then its conf is the documented default
    assert routes.s3[0].conf is None
    assert routes.s3[0].conf_spec() == S3Route.DEFAULT_CONF_TEMPLATE
    assert set(S3Route.DEFAULT_CONF_TEMPLATE) == {
        "bucket",
        "key",
        "size",
        "etag",
        "version_id",
        "sequencer",
        "event_time",
    }


def test_the_bundled_example_routes_file_is_valid() -> None:
    # Given the example shipped in the layer
    text = bundled_path("routes.yaml").read_text(encoding="utf-8")

    # When it is parsed
    routes = parse_routes(text, source="bundled:routes.yaml")

    # Then it routes landing/sales/*.csv to ingest_sales on dagtrigger-demo
    route = routes.s3[0]
    assert isinstance(route, S3Route)
    assert (route.buckets, route.prefix, route.suffix, route.dag_id) == (
        ["landing"],
        "sales/",
        ".csv",
        "ingest_sales",
    )
    assert routes.environment_ref(route.environment).name == "dagtrigger-demo"
    assert routes.environment_ref(route.environment).transport is TransportKind.INVOKE_REST_API
    assert set(route.conf or {}) == {"bucket", "key", "size", "day"}


@pytest.mark.parametrize(
    ("old", "new", "field", "line", "reason"),
    [
        pytest.param(
            "dag_id: ingest_sales",
            "dag_id: -rf",
            "s3[0].dag_id",
            22,
            "should match pattern",
            id="dag id with a leading dash",
        ),
        pytest.param(
            "dag_id: ingest_sales",
            "dag_id: ingést",
            "s3[0].dag_id",
            22,
            "should match pattern",
            id="non-ascii dag id",
        ),
        pytest.param(
            "environment: prod\n",
            "environment: staging\n",
            "s3[0].environment",
            21,
            "unknown environment 'staging' (defined: prod, selfhosted)",
            id="unknown environment",
        ),
        pytest.param(
            "name: everything-else",
            "name: sales-csv",
            "s3[1].name",
            24,
            "route name 'sales-csv' is already used by s3[0]",
            id="duplicate route name",
        ),
        pytest.param(
            "regex: '^sales/",
            "regex: '(^sales/",
            "s3[0].regex",
            18,
            "not a valid regular expression",
            id="regex that does not compile",
        ),
        pytest.param(
            "max_size: 1000000",
            "max_size: 0",
            "s3[0].min_size",
            19,
            "min_size 1 is larger than max_size 0",
            id="min size above max size",
        ),
        pytest.param(
            "suffix: .csv",
            "sufix: .csv",
            "s3[0].sufix",
            17,
            "Extra inputs are not permitted",
            id="misspelt key",
        ),
        pytest.param(
            "    base_url: http://127.0.0.1:8080/\n",
            "",
            "environments.selfhosted.base_url",
            7,
            "transport airflow_rest needs base_url",
            id="airflow_rest without base_url",
        ),
        pytest.param(
            "    transport: invoke_rest_api\n",
            "    transport: invoke_rest_api\n    base_url: https://example.com\n",
            "environments.prod.base_url",
            6,
            "only for transport airflow_rest",
            id="mwaa transport with base_url",
        ),
        pytest.param(
            "http://127.0.0.1:8080/",
            "https://admin:secret@airflow.example.com",
            "environments.selfhosted.base_url",
            10,
            "must not carry credentials",
            id="credentials inside base_url",
        ),
        pytest.param(
            "http://127.0.0.1:8080/",
            "ftp://airflow.example.com",
            "environments.selfhosted.base_url",
            10,
            "http:// or https://",
            id="base_url that is not http",
        ),
        pytest.param(
            "paused: true",
            "paused: true\n    conf: {a: b}",
            "s3[1].conf_template",
            28,
            "either conf or conf_template, not both",
            id="both conf forms",
        ),
        pytest.param(
            'day: "{{ match.day }}"',
            'day: "{{ match.day }"',
            "s3[0].conf",
            23,
            "conf.day: template syntax error",
            id="template syntax error",
        ),
        pytest.param(
            "buckets: [landing]",
            "buckets: [Landing_Zone]",
            "s3[0].buckets[0]",
            15,
            "should match pattern",
            id="invalid bucket name",
        ),
        pytest.param(
            "buckets: [landing]",
            "buckets: []",
            "s3[0].buckets",
            15,
            "at least 1 item",
            id="no bucket",
        ),
        pytest.param(
            "airflow_major: 3",
            "airflow_major: 4",
            "environments.prod.airflow_major",
            6,
            "Input should be 2 or 3",
            id="unknown airflow major",
        ),
        pytest.param(
            "dag_id: ingest_sales",
            "asset: s3://landing/sales/",
            "s3[0].conf",
            23,
            "an asset event has no conf: give its extra: instead",
            id="asset route with a conf",
        ),
        pytest.param(
            "dag_id: catch_all.v2",
            "dag_id: catch_all.v2\n    asset: s3://landing/all/",
            "s3[1].asset",
            28,
            "give either dag_id or asset, not both",
            id="dag_id and asset",
        ),
        pytest.param(
            "dag_id: catch_all.v2",
            "asset: 's3://{{ bucket }/all/'",
            "s3[1].asset",
            27,
            "asset: template syntax error",
            id="asset template syntax error",
        ),
        pytest.param(
            "paused: true",
            "paused: true\n    extra: {a: b}",
            "s3[1].extra",
            30,
            "only for asset routes",
            id="extra on a DAG route",
        ),
        pytest.param(
            "version: 1",
            "version: 2",
            "version",
            1,
            "Input should be 1",
            id="unknown version",
        ),
    ],
)
def test_an_invalid_file_names_the_location_field_line_and_reason(
    old: str, new: str, field: str, line: int, reason: str
) -> None:
    # Given the valid file with one mistake
    assert old in VALID
    text = VALID.replace(old, new, 1)

    # When it is parsed
    message = problems_of(text)

    # Then the error names the file, the field, its line and what is wrong with it
    assert "file:/tmp/routes.yaml" in message
    entry = next((row for row in message.splitlines() if f"- {field} (" in row), None)
    assert entry is not None, message
    assert f"(line {line})" in entry, message
    assert reason in entry, message


def test_the_line_points_at_the_entry_that_lacks_a_required_field() -> None:
    # Given a route with no dag_id, starting on line 14
    text = VALID.replace("    dag_id: ingest_sales\n", "")

    # When it is parsed
    message = problems_of(text)

    # Then the route's own line is reported, with what it lacks
    assert "s3[0].dag_id (line 14): give dag_id (a DAG to start) or asset" in message


def test_an_asset_route_on_a_cli_environment_is_refused_where_it_names_the_asset() -> None:
    # Given an asset route whose environment uses the MWAA CLI, which has no asset command
    text = (
        VALID.replace("transport: invoke_rest_api", "transport: cli")
        .replace("    dag_id: ingest_sales\n", "    asset: 's3://{{ bucket }}/sales/'\n")
        .replace("    conf: {bucket:", "    extra: {bucket:")
    )

    # When it is parsed
    message = problems_of(text)

    # Then the asset field is named, on its line, with what to do instead
    assert "s3[0].asset (line 22): environment 'prod' uses transport cli" in message
    assert "invoke_rest_api or airflow_rest" in message


def test_an_asset_route_keeps_its_uri_template_and_extra() -> None:
    # Given an asset route with an extra
    text = VALID.replace("    dag_id: ingest_sales\n", "    asset: 's3://{{ bucket }}/sales/'\n")
    text = text.replace("    conf: {bucket:", "    extra: {bucket:")

    # When it is parsed
    route = parse_routes(text, source="test").s3[0]

    # Then it targets the asset, and its extra is what gets rendered
    assert (route.dag_id, route.asset) == (None, "s3://{{ bucket }}/sales/")
    assert route.target == "asset s3://{{ bucket }}/sales/"
    assert route.conf_spec() == {
        "bucket": "{{ bucket }}",
        "size": "{{ size }}",
        "day": "{{ match.day }}",
    }


def test_a_value_outside_its_choices_is_shown_beside_the_reason() -> None:
    # Given a transport no environment can use
    text = VALID.replace("transport: invoke_rest_api", "transport: carrier_pigeon", 1)

    # Then the entry shows the value that was given
    message = problems_of(text)
    assert "environments.prod.transport (line 5): Input should be" in message
    assert "(got 'carrier_pigeon')" in message


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    # Given two unrelated mistakes
    text = VALID.replace("dag_id: ingest_sales", "dag_id: -x").replace(
        "name: local-airflow", "name: 9lives"
    )

    # Then both are listed
    message = problems_of(text)
    assert "s3[0].dag_id (line 22)" in message
    assert "environments.selfhosted.name (line 8)" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "version: 1\nenvironments:\n  prod: {name: x\n",
            r"line 4, column 1: .*expected",
            id="unclosed flow mapping",
        ),
        pytest.param(
            "version: 1\nenvironments:\n\tprod: {}\n",
            r"line 3, column 1: found character .\\t. that cannot start any token",
            id="tab indentation",
        ),
        pytest.param("", "the file is empty", id="empty file"),
        pytest.param("- a\n- b\n", r"\(line 1\): the top level must be a mapping", id="a list"),
        pytest.param(
            "version: 1\nenvironments: {}\nversion: 1\n",
            "line 3: key 'version' appears twice in one mapping \\(first on line 1\\)",
            id="duplicate key",
        ),
    ],
)
def test_yaml_problems_report_their_line(text: str, expected: str) -> None:
    # When a file that is not a usable YAML mapping is parsed
    message = problems_of(text)

    # Then the message locates the problem
    assert message.startswith("invalid routes file file:/tmp/routes.yaml")
    assert re.search(expected, message), message


def test_yaml_tags_that_build_python_objects_are_refused() -> None:
    # Given a file that asks PyYAML for a Python object
    text = "version: 1\nenvironments: !!python/object/apply:os.system ['true']\n"

    # Then the safe loader refuses it, with the line
    assert "line 2" in problems_of(text)


def test_a_file_needs_at_least_one_environment() -> None:
    # Given a file with no environments at all
    message = problems_of("version: 1\nenvironments: {}\n")

    # Then that is an error on the environments field
    assert "environments (line 2)" in message


def test_loaded_routes_cannot_be_changed_in_place() -> None:
    # Given loaded routes, shared by every invocation of a warm Lambda
    routes = parse_routes(VALID, source="test")

    # Then un-pausing a route in memory is refused
    with pytest.raises(ValueError, match="frozen"):
        setattr(routes.s3[1], "paused", False)  # noqa: B010 - what a careless caller would do


@pytest.mark.parametrize(
    ("base_url", "allowed", "reason"),
    [
        (
            "http://airflow.example.com",
            True,
            "http:// sends credentials in clear text: use https://",
        ),
        ("http://10.0.0.7:8080", True, "http:// sends credentials in clear text: use https://"),
        ("http://127.0.0.1:8080", False, "set allow_plain_http: true"),
    ],
)
def test_clear_text_airflow_is_refused_unless_on_this_machine_and_allowed(
    base_url: str, allowed: bool, reason: str
) -> None:
    # Given a self-managed Airflow reached over http://
    text = VALID.replace("http://127.0.0.1:8080/", base_url).replace(
        "allow_plain_http: true", f"allow_plain_http: {str(allowed).lower()}"
    )

    # Then the file is refused at its base_url, saying why
    message = problems_of(text)
    assert "environments.selfhosted.base_url (line 10)" in message
    assert reason in message


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:8080", "http://[::1]:8080", "http://localhost"]
)
def test_a_local_airflow_over_http_loads_when_allowed(base_url: str) -> None:
    routes = parse_routes(VALID.replace("http://127.0.0.1:8080/", base_url), source="test")
    assert routes.environments["selfhosted"].base_url == base_url


@pytest.mark.parametrize(
    ("template", "shape"),
    [
        ('\'["not", "an", "object"]\'', "an array"),
        ("'\"{{ key }}\"'", "a string"),
        ("'{% if false %}{}{% endif %}42'", "a number"),
    ],
)
def test_a_conf_template_that_is_never_an_object_fails_the_load(template: str, shape: str) -> None:
    # Given a conf_template whose own text makes it something other than an object
    text = VALID.replace(
        "conf_template: '{\"key\": {{ key | tojson }}}'", f"conf_template: {template}"
    )

    # Then the file is refused at that field and line, before any event is rejected for it
    message = problems_of(text)
    assert "s3[1].conf_template (line 28)" in message, message
    assert f"renders to {shape} whatever the event" in message


def test_a_conf_template_block_that_would_skip_json_escaping_fails_the_load() -> None:
    # Given a conf_template whose {% filter %} block would write an event's text unescaped
    text = VALID.replace(
        "conf_template: '{\"key\": {{ key | tojson }}}'",
        'conf_template: \'{% filter replace(key, key) %}{"key": "{{ key }}"}{% endfilter %}\'',
    )

    # Then the file is refused at that field and line, saying what to write instead
    message = problems_of(text)
    assert "s3[1].conf_template (line 28)" in message, message
    assert "{% filter %} blocks cannot be used in a conf_template" in message
    assert "use the | filter form inside {{ }}" in message


@pytest.mark.parametrize(
    "template",
    [
        "'{\"key\": {{ key | tojson }}}'",
        "'{\"size\": {{ size }}}'",
        "'{{ {\"key\": key} | tojson }}'",
        "'{% if bucket %}[1]{% else %}{}{% endif %}'",
    ],
)
def test_a_conf_template_whose_shape_depends_on_the_event_loads(template: str) -> None:
    text = VALID.replace(
        "conf_template: '{\"key\": {{ key | tojson }}}'", f"conf_template: {template}"
    )
    routes = parse_routes(text, source="test")
    assert routes.s3[1].conf_template == template[1:-1]


# --- the environments the stack may trigger ---------------------------------------------------


def test_an_environment_the_stack_is_not_granted_is_refused_with_its_line() -> None:
    # Given a stack granted only on my-mwaa-env, and VALID's second environment named otherwise
    # When the routes file is parsed with the stack's list
    with pytest.raises(RoutesConfigError) as caught:
        parse_routes(VALID, source="test", allowed_environment_names=("my-mwaa-env",))

    # Then that environment's name is the one problem, with its line, and says what to do
    (problem,) = caught.value.problems
    assert problem.location == "environments.selfhosted.name"
    assert problem.line == VALID.splitlines().index("    name: local-airflow") + 1
    assert "'local-airflow' is not one this stack may trigger" in problem.message
    assert "MWAA_ENVIRONMENT_NAMES: my-mwaa-env" in problem.message
    assert "MwaaEnvironmentNames" in problem.message


def test_every_environment_granted_or_no_list_loads() -> None:
    granted = ("local-airflow", "other", "my-mwaa-env")
    assert parse_routes(VALID, source="test", allowed_environment_names=granted).environments
    assert parse_routes(VALID, source="test", allowed_environment_names=()).environments


SET_ROUTE = textwrap.dedent(
    """\
    version: 1
    environments:
      prod:
        name: my-mwaa-env
    s3:
      - name: exports
        buckets: [landing]
        prefix: exports/
        environment: prod
        dag_id: load_export
        set:
          group: "{{ dirname }}"
          marker: _SUCCESS
          manifest: s3://landing-meta/manifests/
    """
)


def test_a_set_route_keeps_its_grouping_and_completion() -> None:
    file_set = parse_routes(SET_ROUTE, source="test").s3[0].file_set
    assert file_set is not None
    assert (file_set.group, file_set.marker, file_set.max_objects, file_set.late) == (
        "{{ dirname }}",
        "_SUCCESS",
        1000,
        "record",
    )
    assert file_set.manifest_location == ("landing-meta", "manifests/")


@pytest.mark.parametrize(
    ("old", "new", "field", "line", "reason"),
    [
        pytest.param(
            "      marker: _SUCCESS\n",
            "",
            "s3[0].set.marker",
            11,
            "a set needs a completion: give marker, count or quiet_seconds",
            id="no completion",
        ),
        pytest.param(
            "marker: _SUCCESS",
            "marker: _SUCCESS\n      count: 2000",
            "s3[0].set.count",
            14,
            "count 2000 is above max_objects 1000",
            id="count above max_objects",
        ),
        pytest.param(
            "marker: _SUCCESS",
            "quiet_seconds: 600\n      max_wait_seconds: 60",
            "s3[0].set.max_wait_seconds",
            14,
            "the set would never be quiet long enough",
            id="max wait below quiet",
        ),
        pytest.param(
            '"{{ dirname }}"',
            '"{{ dirname }"',
            "s3[0].set.group",
            12,
            "group: template syntax error",
            id="group template syntax error",
        ),
        pytest.param(
            "s3://landing-meta/manifests/",
            "landing-meta/manifests/",
            "s3[0].set.manifest",
            14,
            "must be an S3 location",
            id="manifest not in S3",
        ),
        pytest.param(
            "marker: _SUCCESS",
            "marker: _SUCCESS\n      late: drop",
            "s3[0].set.late",
            14,
            "'record' or 'new_set'",
            id="unknown late handling",
        ),
        pytest.param(
            "    dag_id: load_export\n",
            "    dag_id: load_export\n    conf: {a: b}\n",
            "s3[0].conf",
            11,
            "a route with set: takes no conf",
            id="a conf beside a set",
        ),
    ],
)
def test_a_bad_set_names_the_field_line_and_reason(
    old: str, new: str, field: str, line: int, reason: str
) -> None:
    assert old in SET_ROUTE
    message = problems_of(SET_ROUTE.replace(old, new, 1))
    entry = next((row for row in message.splitlines() if f"- {field} (" in row), None)
    assert entry is not None, message
    assert f"(line {line})" in entry, message
    assert reason in entry, message


@pytest.mark.parametrize(
    ("granted", "refused"),
    [
        (None, False),  # no check: local tools and tests
        ("s3://landing-meta/", False),
        ("s3://landing-meta/other/", True),
        ("", True),  # the stack grants no manifest at all
    ],
)
def test_a_manifest_outside_the_stacks_grant_is_refused_at_load(
    granted: str | None, refused: bool
) -> None:
    if not refused:
        parse_routes(SET_ROUTE, source="test", granted_manifest_location=granted)
        return
    with pytest.raises(RoutesConfigError) as caught:
        parse_routes(SET_ROUTE, source="test", granted_manifest_location=granted)
    assert "s3[0].set.manifest (line 14): the stack may write manifests" in str(caught.value)
