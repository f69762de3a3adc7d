"""render_conf and s3_template_variables: native types, the sandbox, and every refusal code."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dagtrigger.clock import iso_utc
from dagtrigger.conf import (
    check_conf,
    check_conf_template,
    compact_json,
    render_conf,
)
from dagtrigger.errors import RejectedError
from dagtrigger.routes.model import S3Route
from dagtrigger.sources.s3.parse import S3ObjectEvent
from dagtrigger.sources.s3.variables import s3_template_variables

MakeEvent = Callable[..., S3ObjectEvent]
LIMIT = 32 * 1024


@pytest.fixture
def variables(make_event: MakeEvent) -> dict[str, Any]:
    event = make_event("sales/2026-11-21.csv", size=1234)
    return s3_template_variables(event, "sales-csv", {"day": "2026-11-21"})


def refusal(template: Any, variables: dict[str, Any], **kwargs: Any) -> RejectedError:
    with pytest.raises(RejectedError) as caught:
        render_conf(template, variables, max_bytes=kwargs.pop("max_bytes", LIMIT), **kwargs)
    return caught.value


# --- variables -----------------------------------------------------------------------------


def test_s3_variables_describe_the_object(make_event: MakeEvent) -> None:
    event = make_event("données/été 2026.tar.gz", size=7, version_id=None)

    variables = s3_template_variables(event, "r", {"x": "1"})

    assert variables == {
        "bucket": "landing",
        "key": "données/été 2026.tar.gz",
        "dirname": "données",
        "basename": "été 2026.tar.gz",
        "stem": "été 2026.tar",
        "suffix": ".gz",
        "size": 7,
        "etag": "d41d8cd98f00b204e9800998ecf8427e",
        "version_id": None,
        "sequencer": "0062E99A88DC407460",
        "event_time": "2026-11-21T10:15:00Z",
        "region": "us-east-1",
        "route": "r",
        "match": {"x": "1"},
    }


@pytest.mark.parametrize(
    ("key", "dirname", "basename", "stem", "suffix"),
    [
        ("a.csv", "", "a.csv", "a", ".csv"),
        ("x/y/.env", "x/y", ".env", ".env", ""),
        ("x/README", "x", "README", "README", ""),
    ],
)
def test_key_parts(
    make_event: MakeEvent, key: str, dirname: str, basename: str, stem: str, suffix: str
) -> None:
    variables = s3_template_variables(make_event(key), "r", {})

    assert (variables["dirname"], variables["basename"]) == (dirname, basename)
    assert (variables["stem"], variables["suffix"]) == (stem, suffix)


def test_event_times_are_iso_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert iso_utc(datetime(2026, 11, 21, 11, 15, tzinfo=paris)) == "2026-11-21T10:15:00Z"
    assert iso_utc(datetime(2026, 11, 21, 10, 15, 0, 5000)) == "2026-11-21T10:15:00.005000Z"


# --- the mapping form ----------------------------------------------------------------------


def test_a_lone_expression_keeps_its_native_type(variables: dict[str, Any]) -> None:
    # Given a conf whose leaves are single expressions
    template = {
        "size": "{{ size }}",
        "half": "{{ size / 2 }}",
        "version": "{{ version_id }}",
        "match": "{{ match }}",
        "parts": "{{ key.split('/') }}",
        "big": "{{ size > 1000 }}",
        "trimmed": "{{- size -}}",
    }

    # When it is rendered
    conf = render_conf(template, variables, max_bytes=LIMIT)

    # Then numbers, nulls, objects, lists and booleans keep their types
    assert conf == {
        "size": 1234,
        "half": 617.0,
        "version": "v1",
        "match": {"day": "2026-11-21"},
        "parts": ["sales", "2026-11-21.csv"],
        "big": True,
        "trimmed": 1234,
    }


def test_other_strings_render_to_strings(variables: dict[str, Any]) -> None:
    template = {
        "url": "s3://{{ bucket }}/{{ key }}",
        "size_text": "{{ size }} bytes",
        "two": "{{ size }}{{ size }}",
        "padded": " {{ size }}",
        "plain": "no template here",
        "upper": "{{ stem | upper }}",
    }

    assert render_conf(template, variables, max_bytes=LIMIT) == {
        "url": "s3://landing/sales/2026-11-21.csv",
        "size_text": "1234 bytes",
        "two": "12341234",
        "padded": " 1234",
        "plain": "no template here",
        "upper": "2026-11-21",
    }


def test_lists_and_mappings_recurse_and_keys_stay_literal(variables: dict[str, Any]) -> None:
    template = {
        "{{ bucket }}": {"nested": ["{{ size }}", "day={{ match.day }}", 3, None, False, 1.5]},
    }

    assert render_conf(template, variables, max_bytes=LIMIT) == {
        "{{ bucket }}": {"nested": [1234, "day=2026-11-21", 3, None, False, 1.5]}
    }


def test_the_default_s3_conf(variables: dict[str, Any]) -> None:
    assert render_conf(S3Route.DEFAULT_CONF_TEMPLATE, variables, max_bytes=LIMIT) == {
        "bucket": "landing",
        "key": "sales/2026-11-21.csv",
        "size": 1234,
        "etag": "d41d8cd98f00b204e9800998ecf8427e",
        "version_id": "v1",
        "sequencer": "0062E99A88DC407460",
        "event_time": "2026-11-21T10:15:00Z",
    }


def test_no_template_gives_an_empty_conf(variables: dict[str, Any]) -> None:
    assert render_conf(None, variables, max_bytes=LIMIT) == {}


def test_hostile_keys_are_data_not_code(make_event: MakeEvent) -> None:
    # Given an object whose key looks like a template and contains quotes
    key = "{{ ''.__class__ }}/o'brien's \"report\".csv"
    variables = s3_template_variables(make_event(key), "r", {})

    # When it is rendered into a conf
    conf = render_conf(
        {"key": "{{ key }}", "label": "file {{ basename }}"}, variables, max_bytes=LIMIT
    )

    # Then it arrives verbatim, never evaluated
    assert conf == {"key": key, "label": "file o'brien's \"report\".csv"}


# --- the single-string form ----------------------------------------------------------------


def test_a_conf_template_string_renders_to_a_json_object(variables: dict[str, Any]) -> None:
    template = '{"key": {{ key | tojson }}, "size": {{ size }}, "match": {{ match | tojson }}}'

    assert render_conf(template, variables, max_bytes=LIMIT) == {
        "key": "sales/2026-11-21.csv",
        "size": 1234,
        "match": {"day": "2026-11-21"},
    }


def test_a_conf_template_that_is_one_expression_may_yield_an_object(
    variables: dict[str, Any],
) -> None:
    assert render_conf("{{ match }}", variables, max_bytes=LIMIT) == {"day": "2026-11-21"}


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "x{{ cycler.__init__.__globals__ }}",
        "{{ match.update({'a': 1}) }}",
        "{{ key.__len__() }}",
        "{{ 'a' * 10000000 }}",
        "{{ 10 ** 100000 }}",
        "{{ range(10 ** 6) | list }}",
    ],
)
def test_sandbox_escapes_and_resource_bombs_are_refused(
    variables: dict[str, Any], expression: str
) -> None:
    error = refusal({"x": expression}, variables, route_name="sales-csv")

    assert error.code == "template_error"
    assert error.message.startswith("route 'sales-csv' conf.x: template failed:")
    assert "sandbox" in error.message


def test_an_undefined_variable_is_an_error_not_a_blank(variables: dict[str, Any]) -> None:
    error = refusal({"a": {"b": ["ok", "{{ mtach.day }}"]}}, variables, route_name="r")

    assert error.code == "template_error"
    assert error.message == (
        "route 'r' conf.a.b[1]: template failed: UndefinedError: 'mtach' is undefined"
    )


def test_a_missing_regex_group_is_an_error_too(variables: dict[str, Any]) -> None:
    error = refusal("got {{ match.hour }}", variables)

    assert error.code == "template_error"
    assert "conf_template: template failed: UndefinedError" in error.message
    assert "has no attribute 'hour'" in error.message


def test_a_runtime_error_in_an_expression_is_a_template_error(variables: dict[str, Any]) -> None:
    error = refusal({"x": "{{ size / 0 }}"}, variables)

    assert error.code == "template_error"
    assert "ZeroDivisionError" in error.message


@pytest.mark.parametrize(
    ("template", "rendered_as"),
    [
        ("[1, 2]", "an array"),
        ('"text"', "a string"),
        ("{{ size }}", "a number"),
        ("{{ key.split('/') }}", "an array"),
        ("null", "null"),
    ],
)
def test_a_conf_that_is_not_an_object_is_refused(
    variables: dict[str, Any], template: str, rendered_as: str
) -> None:
    error = refusal(template, variables, route_name="r")

    assert error.code == "conf_not_object"
    assert error.message == (
        f"route 'r' conf_template rendered to {rendered_as}, but a DAG run conf "
        "must be a JSON object"
    )


def test_a_conf_template_that_is_not_json_is_refused(variables: dict[str, Any]) -> None:
    error = refusal("{'key': '{{ key }}'}", variables)

    assert error.code == "conf_not_json"
    assert "did not render to JSON" in error.message
    assert "line 1 column 2" in error.message


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ({"r": "{{ range(3) }}"}, "conf.r is a range, not a JSON value"),
        ({"n": {"ratio": "{{ ratio }}"}}, "conf.n.ratio is nan, which JSON cannot hold"),
    ],
)
def test_values_json_cannot_hold_are_refused(
    variables: dict[str, Any], template: dict[str, Any], problem: str
) -> None:
    error = refusal(template, {**variables, "ratio": float("nan")})

    assert error.code == "conf_not_json"
    assert error.message == f"conf is not JSON-serialisable: {problem}"


def test_a_conf_over_the_limit_is_refused_with_its_size(variables: dict[str, Any]) -> None:
    # Given a conf whose compact JSON is {"k":"ééééé"}: 8 ASCII bytes plus 5 two-byte letters
    template = {"k": "ééééé"}
    assert len(json.dumps(template, ensure_ascii=False, separators=(",", ":")).encode()) == 18

    # Then 18 bytes pass an 18-byte limit and fail a 17-byte one, measured in UTF-8
    assert render_conf(template, variables, max_bytes=18) == template
    error = refusal(template, variables, max_bytes=17, route_name="r")
    assert error.code == "conf_too_large"
    assert error.message == "route 'r' conf is 18 bytes of JSON, over the limit of 17 bytes"


# --- the conf rule, whatever made the conf -------------------------------------------------


def test_a_conf_that_keeps_the_rule_is_handed_back_as_it_is() -> None:
    conf = {"k": "ééééé"}
    assert check_conf(conf, max_bytes=18) is conf


@pytest.mark.parametrize(
    ("conf", "kwargs", "code", "message"),
    [
        (
            [1, 2],
            {},
            "conf_not_object",
            "conf is an array, but a DAG run conf must be a JSON object",
        ),
        (
            "text",
            {"where": "route 'r' ", "origin": "conf_jmespath gave"},
            "conf_not_object",
            "route 'r' conf_jmespath gave a string, but a DAG run conf must be a JSON object",
        ),
        (
            {"rows": [1, float("inf")]},
            {"where": "route 'r' "},
            "conf_not_json",
            "route 'r' conf is not JSON-serialisable: conf.rows[1] is inf, which JSON cannot hold",
        ),
        (
            {"note": "half a pair: \ud83d"},
            {"where": "route 'r' "},
            "conf_not_unicode",
            "route 'r' conf holds text that is not Unicode: a lone surrogate ('\\ud83d') where "
            "UTF-8 text was expected",
        ),
        (
            {"k": "ééééé"},
            {"where": "the merged ", "max_bytes": 17},
            "conf_too_large",
            "the merged conf is 18 bytes of JSON, over the limit of 17 bytes",
        ),
    ],
)
def test_a_conf_that_breaks_the_rule_is_refused_saying_where(
    conf: Any, kwargs: dict[str, Any], code: str, message: str
) -> None:
    with pytest.raises(RejectedError) as caught:
        check_conf(conf, **{"max_bytes": LIMIT, **kwargs})

    assert (caught.value.code, caught.value.message) == (code, message)


def test_compact_json_has_no_spaces_keeps_non_ascii_and_refuses_nan() -> None:
    assert compact_json({"k": "é", "n": [1, 2.5, None]}) == '{"k":"é","n":[1,2.5,null]}'
    with pytest.raises(ValueError, match="not JSON compliant"):
        compact_json({"ratio": float("nan")})


# --- load-time checks ----------------------------------------------------------------------


def test_syntax_errors_are_found_before_any_event(variables: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"conf\.a\[1\]: template syntax error: "):
        check_conf_template({"a": ["ok", "{% if %}"]}, field="conf")
    with pytest.raises(ValueError, match=r"conf\.a: key 1 must be a string"):
        check_conf_template({"a": {1: "x"}}, field="conf")
    check_conf_template({"a": ["{{ size }}", {"b": "{{ key }}"}]}, field="conf")


def test_the_event_time_variable_is_utc(make_event: MakeEvent) -> None:
    event = make_event()
    assert event.event_time.tzinfo is UTC
    assert s3_template_variables(event, "r", {})["event_time"] == "2026-11-21T10:15:00Z"
