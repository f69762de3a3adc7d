"""render_conf and s3_template_variables: native types, the sandbox, and every refusal code."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dagtrigger import conf as conf_module
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


@pytest.fixture(autouse=True)
def a_generous_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The time bound has its own test; elsewhere the deterministic bounds decide, however busy
    the machine running the tests is."""
    monkeypatch.setattr(conf_module, "MAX_RENDER_SECONDS", 120.0, raising=False)


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


def test_a_conf_template_that_renders_a_number_too_long_to_read_is_refused(
    variables: dict[str, Any],
) -> None:
    # Given a template whose loops write one number of 6,400 digits (found by make reliability)
    loops = "{% for i in range(40) %}{% for j in range(40) %}{{ 1000 }}{% endfor %}{% endfor %}"
    template = '{"x": ' + loops + "}"

    # When it renders, Then the event is refused with a reason, not a crash
    error = refusal(template, variables)

    assert error.code == "conf_not_json"
    assert "Exceeds the limit (4300 digits)" in error.message


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


# --- bounds while rendering ----------------------------------------------------------------

#: what a refusal may cost: the output limit (4 x LIMIT characters) several times over, never
#: the hundreds of megabytes the operations below ask for
MEMORY_BOUND = 8 * 1024 * 1024


def refused_within_bounds(template: Any, variables: dict[str, Any]) -> RejectedError:
    """The refusal of ``template``, checking that it came before any large allocation."""
    tracemalloc.start()
    try:
        with pytest.raises(RejectedError) as caught:
            render_conf(template, variables, max_bytes=LIMIT, route_name="r")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"{peak} bytes allocated before the refusal"
    assert "MemoryError" not in caught.value.message
    return caught.value


@pytest.mark.parametrize(
    ("expression", "culprit"),
    [
        ("'a'.ljust(10 ** 8)", "str.ljust()"),
        ("'a'.rjust(10 ** 8)", "str.rjust()"),
        ("'a'.center(10 ** 8, '-')", "str.center()"),
        ("'1'.zfill(10 ** 8)", "str.zfill()"),
        ("'\t'.expandtabs(10 ** 8)", "str.expandtabs()"),
        ("('a' * 10000).replace('', 'x' * 10000)", "str.replace()"),
        ("('a' * 1000).translate({97: 'x' * 100000})", "str.translate()"),
        ("('x' * 100000).join(range(1000) | map('string'))", "str.join()"),
        ("'{:>100000000}'.format(key)", "str.format()"),
        ("'{0:>{1}}'.format(key, 10 ** 8)", "str.format()"),
        ("'{0}{0}{0}{0}{0}'.format('x' * 100000)", "str.format()"),
        ("'%100000000d' % size", "the '%' operator"),
        ("'%*s' % (10 ** 8, key)", "the '%' operator"),
        ("'%.100000000f' % 1.5", "the '%' operator"),
        ("'a' | center(10 ** 8)", "the center filter"),
        ("'a' | center(width=10 ** 8)", "the center filter"),
        ("'%100000000s' | format(key)", "the format filter"),
        ("'a' | indent(10 ** 8, true)", "the indent filter"),
        ("('ab' * 50000) | wordwrap(1, wrapstring='x' * 1000)", "the wordwrap filter"),
        ("('ab' * 50000) | wordwrap(width=1, wrapstring='x' * 1000)", "the wordwrap filter"),
        ("range(1000) | join('x' * 100000)", "the join filter"),
        ("range(1000) | join(d='x' * 100000)", "the join filter"),
        ("('x' * 1000) | replace('x', 'y' * 100000)", "the replace filter"),
        ("range(1) | batch(10 ** 7, 'x') | list", "the batch filter"),
        ("range(10) | slice(10 ** 6) | list", "the slice filter"),
        ("match | tojson(10 ** 8)", "the tojson filter's indent"),
        ("(1).to_bytes(10 ** 8, 'big')", "int.to_bytes()"),
        ("5 | round(-10 ** 8)", "the round filter's precision"),
        ("1.5 | round(10 ** 8, 'floor')", "the round filter's precision"),
        ("(10 ** 1000) ** 1000", "the '**' operator"),
        ("['x' * 1000] * 1000", "the '*' operator"),
        ("('x' * 100000) ~ ('x' * 100000)", "the '~' operator"),
    ],
)
def test_operations_that_would_make_a_huge_value_are_refused_before_they_run(
    variables: dict[str, Any], expression: str, culprit: str
) -> None:
    # Given an operation that makes hundreds of megabytes from a few characters of template

    # When it is rendered in either form
    for template in ({"x": "{{ " + expression + " }}"}, "{{ " + expression + " }}"):
        error = refused_within_bounds(template, variables)

        # Then it is refused before it allocates, naming the operation and the bound
        assert error.code == "template_error", error.message
        assert culprit in error.message
        assert f"over the {4 * LIMIT} a template may make" in error.message


@pytest.mark.parametrize(
    ("template", "culprit"),
    [
        # doubling a string with ~ in a loop (2 ** 27 characters)
        (
            "{% set ns = namespace(s='a') %}{% for i in range(27) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
            "the '~' operator",
        ),
        # doubling a list with + (2 ** 24 items)
        (
            "{% set ns = namespace(l=[0]) %}{% for i in range(24) %}"
            "{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}",
            "the '+' operator",
        ),
        # a list that holds itself twice, 22 times over: small in memory, 4 M leaves as JSON
        (
            "{% set ns = namespace(l=[key]) %}{% for i in range(22) %}"
            "{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l | tojson | length }}",
            "a literal",
        ),
        ("{% set a = [key] * 1000 %}{% set b = [a] * 1000 %}{{ b | tojson | length }}", "'*'"),
        # squaring a number (10 ** (1000 * 2 ** 30) at the end)
        (
            "{% set ns = namespace(n=10 ** 1000) %}{% for i in range(30) %}"
            "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 0 }}",
            "the '*' operator",
        ),
    ],
)
def test_values_built_up_in_loops_are_bounded(
    variables: dict[str, Any], template: str, culprit: str
) -> None:
    error = refused_within_bounds({"x": template}, variables)

    assert error.code == "template_error"
    assert error.message.startswith("route 'r' conf.x: template failed: refused by the sandbox")
    assert culprit in error.message


@pytest.mark.parametrize(
    "template",
    [
        "{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}",
        "{% for i in range(100000) %}" + "z" * 1000 + "{% endfor %}",
        # gathered by a block before anything is written out
        "{% set x %}{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}{% endset %}"
        "{{ x | length }}",
        "{% macro m() %}{% for i in range(100000) %}{{ key }}{% endfor %}{% endmacro %}"
        "{{ m() | length }}",
    ],
)
def test_rendered_text_stops_at_four_times_the_conf_limit(
    variables: dict[str, Any], template: str
) -> None:
    # Given a template that writes about 100 MB of text
    for form in ({"x": template}, '{"x": "' + template + '"}'):
        # When it is rendered
        error = refused_within_bounds(form, variables)

        # Then rendering stops at 4 x the conf limit, as a conf that is too large
        assert error.code == "conf_too_large", error.message
        assert f"went over {4 * LIMIT} characters" in error.message or (
            f"wrote over {4 * LIMIT} characters" in error.message
        )
        assert f"4 x the conf limit of {LIMIT} bytes" in error.message


@pytest.mark.parametrize(
    "template",
    [
        "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(18) }}",
        "{% for a in range(1000) %}{{ range(1000) | map('string') | list | length }}{% endfor %}",
    ],
)
def test_the_work_of_one_conf_is_bounded_in_steps(variables: dict[str, Any], template: str) -> None:
    # When a template loops or recurses a million times
    error = refusal({"x": template}, variables)

    # Then it stops at the step bound

    assert error.code == "template_error"
    assert "the template took more than 100000 steps" in error.message


@pytest.mark.parametrize(
    "template",
    [
        # each string is within the bound, but map() and list keep 60,000 of them
        "{{ ('x ' * 60000).split() | map('center', 100000) | list | length }}",
        "{{ ''.join(('x ' * 60000).split() | map('center', 100000)) | length }}",
        "{% for i in range(1000) %}{% set y = key * 5000 %}{% endfor %}",
    ],
)
def test_the_values_one_conf_makes_are_bounded_in_all(
    variables: dict[str, Any], template: str
) -> None:
    error = refused_within_bounds({"x": template}, variables)

    assert error.code == "template_error"
    assert f"the template made more than {32 * 4 * LIMIT} characters or items" in error.message


def test_the_work_of_one_conf_is_bounded_in_time(
    variables: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a time budget far shorter than a million loop iterations take, and no step bound
    monkeypatch.setattr(conf_module, "MAX_RENDER_STEPS", 10**12, raising=False)
    monkeypatch.setattr(conf_module, "MAX_RENDER_SECONDS", 0.05, raising=False)
    loops = "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}"

    # When such a template is rendered
    started = time.monotonic()
    error = refusal({"x": loops}, variables)

    # Then it stops once the budget is spent
    assert time.monotonic() - started < 1
    assert error.code == "template_error"
    assert "the template ran longer than 0.05 s" in error.message


ORDINARY_TEMPLATES = {
    "padded": "{{ stem.ljust(12, '.') }}|{{ '%08d' % size }}|{{ '{:>6}'.format(suffix) }}",
    "mapped": "{{ '%(n)s=%(v)05.1f' % {'n': basename, 'v': size / 7} }}",
    "parts": "{{ key.split('/') | join(' > ') | center(30) }}",
    "sizes": "{{ [size] * 3 + [1, 2] }}",
    "power": "{{ 2 ** 64 * 3 }}",
    "flat": "{{ [[1, 2], [3]] | sum(start=[]) }}",
    "total": "{{ [size, 1, 2] | sum }}",
    "json": "{{ match | tojson(2) }}",
    "loop": "{% for part in key.split('/') %}[{{ loop.index }}:{{ part }}]{% endfor %}",
    "wrapped": "{{ 'one two three' | wordwrap(5) | indent(2) }}",
    "keywords": "{{ stem | center(width=14) | wordwrap(width=8, wrapstring='/') | indent(1) }}",
    "joined_by_name": "{{ key.split('/') | join(d=' / ') | replace(old='/', new='|', count=1) }}",
    "rounded": "{{ [size / 7 | round(2), 7.25 | round(precision=1, method='floor')] }}",
    "replaced": "{{ key.replace('/', '//') | replace('.', '[.]') }}",
    "joined": "{{ ', '.join(key.split('/')) ~ '!' }}",
    "batches": "{{ 'abcde' | batch(2, '-') | list }}",
    "tabs": "{{ 'a\tb'.expandtabs(4).zfill(6) }}",
    "block": "{% set label %}{{ bucket }}:{{ size }}{% endset %}{{ label | upper }}",
    "macro": "{% macro tag(x) %}<{{ x }}>{% endmacro %}{{ tag(stem) }}{{ tag(suffix) }}",
}


def test_the_bounds_leave_ordinary_templates_as_jinja_renders_them(
    variables: dict[str, Any],
) -> None:
    # Given templates that use the bounded operations the ordinary way
    plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined)

    # When they are rendered
    conf = render_conf(ORDINARY_TEMPLATES, variables, max_bytes=LIMIT)

    # Then each gives what Jinja's own sandbox gives (lone expressions keep their types)
    for name, template in ORDINARY_TEMPLATES.items():
        lone = template.startswith("{{ ") and template.count("{{") == 1 and "~" not in template
        if lone and template.endswith(" }}"):
            expected = plain.compile_expression(template[3:-3])(**variables)
        else:
            expected = plain.from_string(template).render(variables)
        assert conf[name] == expected, name


@pytest.mark.parametrize(
    ("expression", "culprit"),
    [
        # value % n: printf formatting when the value is a string
        ("'%100000000s' is odd", "the odd test needs a number, not str"),
        ("'%100000000s' is even", "the even test needs a number, not str"),
        ("'%100000000s' is divisibleby 7", "the divisibleby test needs a number, not str"),
        # value * 10 ** n: repetition when the value is a string or a list
        ("('x' * 1000) | round(5, 'floor')", "the round filter needs a number, not str"),
        ("[key] | round(7, 'ceil')", "the round filter needs a number, not list"),
    ],
)
def test_number_tests_and_round_take_numbers_only(
    variables: dict[str, Any], expression: str, culprit: str
) -> None:
    error = refused_within_bounds({"x": "{{ " + expression + " }}"}, variables)

    assert error.code == "template_error"
    assert error.message == f"route 'r' conf.x: template failed: TypeError: {culprit}"
    # numbers work as they always did
    numbers = {"odd": "{{ 7 is odd }}", "by": "{{ 21 is divisibleby 7 }}", "r": "{{ 2.6 | round }}"}
    assert render_conf(numbers, variables, max_bytes=LIMIT) == {"odd": True, "by": True, "r": 3.0}


def test_an_error_quoting_a_huge_value_is_cut_short(variables: dict[str, Any]) -> None:
    # Jinja's message for a missing item quotes the item's name, however long it is
    error = refusal({"x": "{{ match['x' * 100000] }}"}, variables)

    assert error.code == "template_error"
    assert error.message.startswith("conf.x: template failed: UndefinedError: 'dict object'")
    assert len(error.message) < 1100
    assert error.message.endswith("…")


def test_lipsum_is_not_offered(variables: dict[str, Any]) -> None:
    error = refusal({"x": "{{ lipsum(10 ** 5) }}"}, variables)

    assert error.code == "template_error"
    assert "'lipsum' is undefined" in error.message


def test_a_namespace_cannot_hide_in_a_list(variables: dict[str, Any]) -> None:
    # A list measured while the namespace in it was small would not see it grow afterwards.
    template = "{% set ns = namespace(s='') %}{% set many = [ns] * 1000 %}{{ many | length }}"

    error = refusal({"x": template}, variables)

    assert error.code == "template_error"
    assert "a namespace() cannot be held in a list, tuple or dict" in error.message


# --- JSON escaping in conf_template ---------------------------------------------------------

INJECTION = 'x", "admin": true, "y": "'


@pytest.mark.parametrize(
    "template",
    [
        '{"key": "{{ key }}"}',
        '{"key": {{ key }}}',
        '{"key": {{ key | tojson }}}',
        '{"key": {{ key | tojson | safe }}}',
        '{"key": {{ key | safe }}}',
        '{"key": {{ key ~ "" }}}',
        '{"key": "{{ key | upper | lower }}"}',
    ],
)
def test_a_value_cannot_add_keys_to_a_conf_template(make_event: MakeEvent, template: str) -> None:
    # Given an object key crafted to close the JSON string and open new keys
    variables = s3_template_variables(make_event(INJECTION), "r", {})

    # When it is rendered into a conf_template, with or without |tojson
    conf = render_conf(template, variables, max_bytes=LIMIT)

    # Then it stays one string value: the keys are the template's own
    assert conf == {"key": INJECTION}


@pytest.mark.parametrize(
    ("key", "template", "expected"),
    [
        ('1, "admin": true', '{"n": {{ key }}}', {"n": '1, "admin": true'}),
        ("1, 2", '{"n": [{{ key }}]}', {"n": ["1, 2"]}),
        ('\\", "admin', '{"n": "{{ key }}", "m": 1}', {"n": '\\", "admin', "m": 1}),
        ("tail\\", '{"n": "{{ key }}", "m": "{{ key }}"}', {"n": "tail\\", "m": "tail\\"}),
        ("new\nline\u2028", '{"n": "{{ key }}"}', {"n": "new\nline\u2028"}),
    ],
)
def test_quotes_backslashes_and_controls_in_values_stay_inside_their_values(
    make_event: MakeEvent, key: str, template: str, expected: dict[str, Any]
) -> None:
    variables = s3_template_variables(make_event(key), "r", {})

    assert render_conf(template, variables, max_bytes=LIMIT) == expected


def test_a_lone_expression_that_gives_text_is_a_string_not_json(make_event: MakeEvent) -> None:
    # Given a key that is itself the text of a JSON object
    variables = s3_template_variables(make_event('{"admin": true}'), "r", {})

    # Then a conf_template that is just {{ key }} does not parse it as the conf
    error = refusal("{{ key }}", variables, route_name="r")
    assert error.code == "conf_not_object"
    assert "conf_template rendered to a string" in error.message
    # while |tojson output is JSON, as before
    assert render_conf("{{ {'key': key} | tojson }}", variables, max_bytes=LIMIT) == {
        "key": '{"admin": true}'
    }


def test_values_outside_quotes_are_json_and_inside_quotes_are_text(
    variables: dict[str, Any],
) -> None:
    template = (
        '{"size": {{ size }}, "half": {{ size / 2 }}, "big": {{ size > 1000 }}, '
        '"none": {{ nothing }}, "match": {{ match }}, "day": {{ match.day }}, '
        '"text": "{{ size }} bytes, {{ size > 1000 }}, {{ nothing }}", '
        '"url": "s3://{{ bucket }}/{{ key }}"}'
    )

    conf = render_conf(template, {**variables, "nothing": None}, max_bytes=LIMIT)

    assert conf == {
        "size": 1234,
        "half": 617.0,
        "big": True,
        "none": None,
        "match": {"day": "2026-11-21"},
        "day": "2026-11-21",
        "text": "1234 bytes, True, None",
        "url": "s3://landing/sales/2026-11-21.csv",
    }


def test_an_escaped_quote_split_across_pieces_of_text_keeps_the_string_open(
    make_event: MakeEvent,
) -> None:
    # Given a backslash and the quote it escapes written by two different pieces of template
    variables = s3_template_variables(make_event(INJECTION), "r", {})
    template = '{"a": "{% if true %}\\{% endif %}"{{ key }}"}'

    # Then the value after them is still inside the string
    assert render_conf(template, variables, max_bytes=LIMIT) == {"a": '"' + INJECTION}


def test_a_loop_can_build_an_array_of_strings(make_event: MakeEvent) -> None:
    variables = s3_template_variables(make_event('a/b"c/d'), "r", {})
    template = (
        '{"parts": [{% for part in key.split("/") %}"{{ part }}"'
        "{% if not loop.last %}, {% endif %}{% endfor %}]}"
    )

    assert render_conf(template, variables, max_bytes=LIMIT) == {"parts": ["a", 'b"c', "d"]}


def test_a_value_json_cannot_hold_outside_quotes_is_a_template_error(
    variables: dict[str, Any],
) -> None:
    error = refusal('{"r": {{ range(3) }}}', variables, route_name="r")

    assert error.code == "template_error"
    assert error.message == (
        "route 'r' conf_template: template failed: TypeError: {{ }} outside a JSON string must "
        "give a JSON value, but the value is a range, not a JSON value (a filter such as "
        "|string, |list or |tojson can turn it into one)"
    )


@pytest.mark.parametrize(
    "template",
    [
        '{% filter upper %}{"a": "{{ key }}"}{% endfilter %}',
        '{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}{"a": 1}{% endcall %}',
    ],
)
def test_blocks_whose_output_skips_escaping_are_refused_in_a_conf_template(
    variables: dict[str, Any], template: str
) -> None:
    with pytest.raises(ValueError, match=r"conf_template: template syntax error: .* blocks cannot"):
        check_conf_template(template, field="conf_template")
    # the mapping form has no JSON to escape: the same block is fine there
    check_conf_template({"a": template}, field="conf")


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
