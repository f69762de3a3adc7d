"""Fuzz: conf templating (``dagtrigger.conf.render_conf``).

Two families of properties:

* an event's values, whatever they hold (S3 keys with any Unicode, quotes, backslashes,
  template syntax, control characters; sizes; regex groups; webhook payloads), rendered
  through the conf forms the routes files and docs use, come out as data: the conf has exactly
  the keys the template's literal text defines, each value is the event's own value (never
  evaluated, never able to close a JSON string and open a key), the conf keeps the size limit,
  and rendering takes bounded time;
* short templates built from a grammar of the operations that make large values or repeat
  work (``ljust``, ``center``, ``zfill``, ``*``, ``**``, ``%``, ``~`` and ``+`` in loops,
  ``format``, ``join``, ``replace``, ``range``, recursive macros ...) either render a conf within
  the limit or are refused with ``RejectedError``: never another exception, never a
  ``MemoryError``, never more than a bounded amount of memory or time.
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from dagtrigger.conf import MAX_RENDER_SECONDS, compact_json, render_conf
from dagtrigger.errors import RejectedError
from dagtrigger.routes.model import S3Route
from dagtrigger.sources.s3.parse import S3ObjectEvent
from dagtrigger.sources.s3.variables import s3_template_variables

#: one render may take its time budget, plus one operation already under way, plus slack for a
#: busy machine (and tracemalloc, which slows every allocation)
TIME_BOUND = MAX_RENDER_SECONDS + 9
#: what one render may allocate at its peak: values are bounded by 4 x the conf limit
#: (at most 128 KB of characters or items here), held a few times over
MEMORY_BOUND = 64 * 1024 * 1024

#: text that means something to JSON, to Jinja or to Python
HOSTILE_TEXT = st.sampled_from(
    [
        '"',
        "\\",
        '\\"',
        '", "admin": true, "x": "',
        '"}, "admin": {"x": "',
        "1, 2",
        "true",
        "null",
        "{}",
        '{"admin": true}',
        "{{ ''.__class__.__mro__ }}",
        "{% for x in range(10) %}",
        "{# comment #}",
        "${x}",
        "%s%d",
        "{0}",
        "\x00\x1f\x7f",
        "\n\r\t",
        "\u2028\u2029",
        "é✓🚀",
        "\\u0022",
        "/",
        " ",
    ]
)
TEXT = st.lists(st.one_of(st.text(), HOSTILE_TEXT), max_size=6).map("".join)
#: S3 keys: 1 to 1,024 bytes of UTF-8
KEYS = TEXT.map(lambda key: key.encode()[:1024].decode(errors="ignore") or "k")
SIZES = st.integers(min_value=0, max_value=5 * 1024**4)
MATCH_GROUPS = st.fixed_dictionaries(
    {"day": st.one_of(st.none(), TEXT)},
    optional={"n": st.one_of(st.none(), TEXT), "rest": TEXT},
)
LIMITS = st.sampled_from([512, 4096, 32 * 1024])


def s3_variables(key: str, size: int, version_id: str | None, groups: dict[str, Any]) -> dict:
    event = S3ObjectEvent(
        bucket="landing",
        key=key,
        size=size,
        etag="d41d8cd98f00b204e9800998ecf8427e",
        version_id=version_id,
        sequencer="0062E99A88DC407460",
        event_time=datetime(2026, 11, 21, 10, 15, tzinfo=UTC),
        region="us-east-1",
        event_name="ObjectCreated:Put",
        source_format="eventbridge",
    )
    return s3_template_variables(event, "sales-csv", groups)


def as_text(value: Any) -> str:
    """What a value becomes when a template writes it as text (Jinja's str())."""
    return str(value)


#: the conf forms of the routes files and docs, and the conf each must give for the variables
S3_FORMS: list[tuple[Any, Any]] = [
    (
        S3Route.DEFAULT_CONF_TEMPLATE,
        lambda v: {
            name: v[name]
            for name in ("bucket", "key", "size", "etag", "version_id", "sequencer", "event_time")
        },
    ),
    (  # README and the bundled routes.yaml
        {
            "bucket": "{{ bucket }}",
            "key": "{{ key }}",
            "size": "{{ size }}",
            "day": "{{ match.day }}",
        },
        lambda v: {
            "bucket": v["bucket"],
            "key": v["key"],
            "size": v["size"],
            "day": v["match"]["day"],
        },
    ),
    (  # the demo's routes.yaml
        {"key": "{{ key }}", "version_id": "{{ version_id }}", "file": "{{ basename }}"},
        lambda v: {"key": v["key"], "version_id": v["version_id"], "file": v["basename"]},
    ),
    (
        {"url": "s3://{{ bucket }}/{{ key }}", "label": "{{ stem }} ({{ size }} bytes)"},
        lambda v: {
            "url": f"s3://{v['bucket']}/{v['key']}",
            "label": f"{v['stem']} ({v['size']} bytes)",
        },
    ),
    (  # conf_template with |tojson, as the docs show
        '{"key": {{ key | tojson }}, "size": {{ size }}, "match": {{ match | tojson }}}',
        lambda v: {"key": v["key"], "size": v["size"], "match": v["match"]},
    ),
    (  # conf_template without |tojson: escaped by default
        '{"key": "{{ key }}", "url": "s3://{{ bucket }}/{{ key }}", "stem": {{ stem }}, '
        '"size": {{ size }}, "day": "{{ match.day }}", "match": {{ match }}}',
        lambda v: {
            "key": v["key"],
            "url": f"s3://{v['bucket']}/{v['key']}",
            "stem": v["stem"],
            "size": v["size"],
            "day": as_text(v["match"]["day"]),
            "match": v["match"],
        },
    ),
    (
        '{"parts": [{% for part in key.split("/") %}"{{ part }}"'
        '{% if not loop.last %}, {% endif %}{% endfor %}], "n": {{ key.split("/") | length }}}',
        lambda v: {"parts": v["key"].split("/"), "n": len(v["key"].split("/"))},
    ),
    ("{{ match }}", lambda v: v["match"]),
]


def outcome(template: Any, variables: dict[str, Any], max_bytes: int) -> dict | RejectedError:
    """The conf, or the refusal: anything else propagates and fails the property."""
    try:
        return render_conf(template, variables, max_bytes=max_bytes, route_name="fuzz")
    except RejectedError as refused:
        return refused


def expect_conf_or_too_large(result: dict | RejectedError, expected: dict, max_bytes: int) -> None:
    encoded_size = len(compact_json(expected).encode())
    if encoded_size <= max_bytes:
        assert result == expected
        assert list(result) == list(expected)  # the template's own keys, in its order
    else:
        # refused as too large: the conf itself, or on the way (text or a value over 4 x the limit)
        assert isinstance(result, RejectedError)
        assert result.code in {"conf_too_large", "template_error"}, result.message
        assert " over " in result.message, result.message


@settings(deadline=None)
@given(
    form=st.sampled_from(S3_FORMS),
    key=KEYS,
    size=SIZES,
    version_id=st.one_of(st.none(), TEXT),
    groups=MATCH_GROUPS,
    max_bytes=LIMITS,
)
def test_s3_event_values_render_as_data_in_every_conf_form(
    form: tuple[Any, Any],
    key: str,
    size: int,
    version_id: str | None,
    groups: dict[str, Any],
    max_bytes: int,
) -> None:
    template, expected_for = form
    variables = s3_variables(key, size, version_id, groups)

    started = time.monotonic()
    result = outcome(template, variables, max_bytes)

    assert time.monotonic() - started < TIME_BOUND
    expect_conf_or_too_large(result, expected_for(variables), max_bytes)


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
PAYLOADS = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


@settings(deadline=None)
@given(
    name=PAYLOADS,
    payload=st.dictionaries(TEXT, PAYLOADS, max_size=4),
    max_bytes=LIMITS,
)
def test_webhook_payload_values_render_as_data(
    name: Any, payload: dict[str, Any], max_bytes: int
) -> None:
    # Given a webhook payload of any JSON, and the three ways a conf_template may embed it
    variables = {
        "payload": {**payload, "name": name},
        "headers": {"x-github-event": "push"},
        "delivery_id": "d-1",
        "route": "hook",
        "received_at": "2026-11-21T10:15:00Z",
    }
    template = (
        '{"tojson": {{ payload | tojson }}, "plain": {{ payload }}, '
        '"name": {{ payload.name }}, "text": "{{ payload.name }}"}'
    )

    # When it is rendered
    result = outcome(template, variables, max_bytes)

    # Then each holds the payload's own value: never more keys, never a changed type
    expect_conf_or_too_large(
        result,
        {
            "tojson": variables["payload"],
            "plain": variables["payload"],
            "name": name,
            "text": as_text(name),
        },
        max_bytes,
    )


# ---------------------------------------------------------------------------------------------
# A grammar of dangerous operations
# ---------------------------------------------------------------------------------------------

NUMBERS = st.sampled_from(
    ["0", "1", "2", "3", "7", "27", "40", "1000", "10 ** 5", "10 ** 6", "10 ** 8", "10 ** 9", "-1"]
)
ATOMS = st.one_of(
    NUMBERS,
    st.sampled_from(
        [
            "key",
            "size",
            "match",
            "'ab'",
            "'\\t'",
            "'%s%s'",
            "'{0}{0}'",
            "('x' * 1000)",
            "[key, key]",
            "[[1], [2]]",
            "{'a': key}",
            "range(1000)",
            "namespace(v=key)",
        ]
    ),
)

BINARY = ["*", "**", "~", "+", "%", "//"]
CALLS = [
    "({a}).ljust({n})",
    "({a}).rjust({n}, '-')",
    "({a}).center({n})",
    "({a}).zfill({n})",
    "({a}).expandtabs({n})",
    "({a}).replace('', {b})",
    "({a}).replace('a', {b}, {n})",
    "({a}).join({b})",
    "({a}).format({b}, {b})",
    "({a}).format_map({{'x': {b}}})",
    "({a}).translate({{97: {b}}})",
    "({a}).split()",
    "({a}).encode()",
    "({a}).to_bytes({n}, 'big')",
    "'%*s' % ({n}, {a})",
    "'%.*f' % ({n}, {a})",
    "'{{:>{{0}}}}'.format({n})",
    "({a}) | center({n})",
    "({a}) | indent({n}, true)",
    "({a}) | wordwrap({n}, wrapstring={b})",
    "({a}) | format({b})",
    "({a}) | join({b})",
    "({a}) | list",
    "({a}) | string",
    "({a}) | tojson",
    "({a}) | tojson({n})",
    "({a}) | batch({n}, 'x') | list",
    "({a}) | slice({n}) | list",
    "({a}) | sum(start=[])",
    "({a}) | replace('', {b})",
    "({a}) | map('string') | join({b})",
    "({a}) | unique | list",
    "({a}) | pprint",
    "({a}) | round({n}, 'floor')",
    "({a}) is odd",
    "({a}) is divisibleby {n}",
    "({a}) | map('center', {n}) | list",
    "({a}) | urlize(target={b})",
    "[{a}] * {n}",
    "range({n}) | list",
    "dict(a={a}, b={b})",
]


def _binary(parts: tuple[str, str, str]) -> str:
    return f"({parts[0]} {parts[1]} {parts[2]})"


def _call(parts: tuple[str, str, str, str]) -> str:
    pattern, a, b, n = parts
    return pattern.format(a=a, b=b, n=n)


EXPRESSIONS = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(BINARY), inner).map(_binary),
        st.tuples(st.sampled_from(CALLS), inner, inner, NUMBERS).map(_call),
    ),
    max_leaves=5,
)

STATEMENTS = [
    "{{{{ {a} }}}}",
    "{{% set ns = namespace(v={a}) %}}{{% for i in range({n}) %}}{{% set ns.v = ns.v ~ ns.v %}}"
    "{{% endfor %}}{{{{ ns.v | length }}}}",
    "{{% set ns = namespace(v={a}) %}}{{% for i in range({n}) %}}{{% set ns.v = ns.v + ns.v %}}"
    "{{% endfor %}}{{{{ ns.v | length }}}}",
    "{{% set ns = namespace(v={a}) %}}{{% for i in range({n}) %}}{{% set ns.v = [ns.v, ns.v] %}}"
    "{{% endfor %}}{{{{ ns.v | tojson | length }}}}",
    "{{% set ns = namespace(v={a}) %}}{{% for i in range({n}) %}}{{% set ns.v = ns.v * ns.v %}}"
    "{{% endfor %}}{{{{ ns.v | string | length }}}}",
    "{{% set ns = namespace(v={a}) %}}{{% for i in range({n}) %}}{{% set ns.v = {b} %}}"
    "{{% endfor %}}{{{{ ns.v | string | length }}}}",
    "{{% for i in range({n}) %}}{{{{ {a} }}}}{{% endfor %}}",
    "{{% for i in range({n}) %}}{{% for j in range({n}) %}}{{{{ {a} }}}}"
    "{{% endfor %}}{{% endfor %}}",
    "{{% set x %}}{{% for i in range({n}) %}}{{{{ {a} }}}}{{% endfor %}}{{% endset %}}"
    "{{{{ x | length }}}}",
    "{{% macro f(x, d) %}}{{% if d > 0 %}}{{{{ f(x ~ x, d - 1) }}}}{{{{ f(x, d - 1) }}}}"
    "{{% endif %}}{{% endmacro %}}{{{{ f({a}, {n}) | length }}}}",
    "{{% for row in ({a}) | batch({n}) recursive %}}{{{{ loop(row) if row is sequence }}}}"
    "{{% endfor %}}",
]

TEMPLATES = st.tuples(st.sampled_from(STATEMENTS), EXPRESSIONS, EXPRESSIONS, NUMBERS).map(
    lambda parts: parts[0].format(a=parts[1], b=parts[2], n=parts[3])
)
#: the template as a conf: leaf, inside a conf_template's JSON string, and as its JSON value
FORMS = st.sampled_from(
    [lambda t: {"x": t}, lambda t: '{"x": "' + t + '"}', lambda t: '{"x": ' + t + "}"]
)


@settings(deadline=None)
@given(
    template=TEMPLATES,
    form=FORMS,
    key=KEYS,
    max_bytes=st.sampled_from([1024, 32 * 1024]),
)
def test_dangerous_operations_render_within_the_bounds_or_are_refused(
    template: str, form: Any, key: str, max_bytes: int
) -> None:
    variables = s3_variables(key, 1234, "v1", {"day": "2026-11-21"})

    tracemalloc.start()
    started = time.monotonic()
    try:
        result = outcome(form(template), variables, max_bytes)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert time.monotonic() - started < TIME_BOUND, template
    assert peak < MEMORY_BOUND, (peak, template)
    event(result.code if isinstance(result, RejectedError) else "rendered")
    if isinstance(result, RejectedError):
        assert result.code in {
            "template_error",
            "conf_too_large",
            "conf_not_json",
            "conf_not_object",
            "conf_not_unicode",
        }, result.message
        assert "MemoryError" not in result.message, (template, result.message)
        assert result.message.startswith("route 'fuzz' "), result.message
    else:
        assert len(compact_json(result).encode()) <= max_bytes
        assert list(result) == ["x"]


def test_the_grammar_reaches_every_kind_of_outcome() -> None:
    # The fuzz above would prove little if every template were refused the same way.
    rendered = {
        "{{ ('ab').ljust(7) }}": {"x": "ab     "},
        "{% for i in range(3) %}{{ 'ab' }}{% endfor %}": {"x": "ababab"},
    }
    variables = s3_variables("k", 1, None, {"day": None})
    for template, conf in rendered.items():
        assert render_conf({"x": template}, variables, max_bytes=1024) == conf
    for template in ("{{ ('ab').ljust(10 ** 9) }}", "{{ (10 ** 9) * 'x' }}"):
        refused = outcome({"x": template}, variables, 1024)
        assert isinstance(refused, RejectedError)
        assert refused.code == "template_error"
