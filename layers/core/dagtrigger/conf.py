"""Render a route's DAG run ``conf`` from an event's fields with a sandboxed Jinja environment.

A route gives its conf in one of two forms:

``conf:`` (a mapping)
    A YAML mapping whose string leaves are Jinja templates. Keys are literal, lists and
    mappings recurse. A string that is exactly one expression, ``"{{ size }}"``, keeps the
    expression's native type (``size`` stays an int, ``match`` stays an object); any other
    string renders to a string (``"s3://{{ bucket }}/{{ key }}"``).

``conf_template:`` (one string)
    One Jinja template that must render to a JSON object, for confs whose shape depends on
    the event: ``'{"key": {{ key | tojson }}, "tags": {{ match | tojson }}}'``. A template
    that is exactly one expression (``"{{ payload }}"``) may also yield an object directly.

Templates run in an immutable sandbox with strict undefined variables: reading a missing
variable, touching ``__class__`` and friends, or mutating a value is an error, never a blank.

``check_conf`` holds the rule every DAG run conf meets, whatever made it (a template, a
schedule, a webhook, an API caller): a JSON object of at most ``max_bytes`` bytes of
``compact_json``, UTF-8 encoded.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, Template, TemplateSyntaxError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from dagtrigger.errors import RejectedError

# "{{ expr }}" and nothing else (Jinja's "-"/"+" whitespace markers allowed inside the braces).
_SINGLE_EXPRESSION = re.compile(r"\A\{\{[-+]?(?P<expr>.*?)[-+]?\}\}\Z", re.DOTALL)

# Upper bounds that keep one template from exhausting a Lambda's memory.
_MAX_REPEAT_LENGTH = 1_000_000
_MAX_EXPONENT = 1_000


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus bounds on ``*`` and ``**`` (``'a' * 10**9`` exhausts memory)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is larger than {_MAX_EXPONENT}")
            return operator.pow(left, right)
        if operator_name == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
            return operator.mul(left, right)
        return super().call_binop(context, operator_name, left, right)


def _check_repeat(sequence: Any, times: Any) -> None:
    too_long = (
        isinstance(sequence, str | list | tuple)
        and isinstance(times, int)
        and len(sequence) * times > _MAX_REPEAT_LENGTH
    )
    if too_long:
        raise SecurityError(f"repeating a sequence to more than {_MAX_REPEAT_LENGTH} items")


_ENV = _BoundedSandbox(
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)
#: renders a template with every variable unknown, to see the shape its literal text gives
_PROBE = _BoundedSandbox(undefined=ChainableUndefined, autoescape=False)


@lru_cache(maxsize=1024)
def _compiled_template(source: str) -> Template:
    return _ENV.from_string(source)


@lru_cache(maxsize=1024)
def _compiled_expression(expression: str) -> Callable[..., Any]:
    return _ENV.compile_expression(expression, undefined_to_none=False)


def _single_expression(source: str) -> str | None:
    """The expression inside ``source`` if ``source`` is exactly ``{{ expr }}``, else None."""
    found = _SINGLE_EXPRESSION.match(source)
    if found is None:
        return None
    expression = found.group("expr")
    # "{{ a }} and {{ b }}" also starts with "{{" and ends with "}}": not one expression.
    if "{{" in expression or "}}" in expression:
        return None
    return expression


# ---------------------------------------------------------------------------------------------
# Load-time checks (called by the routes file validation)
# ---------------------------------------------------------------------------------------------


def check_conf_template(template: Mapping[str, Any] | str, *, field: str) -> None:
    """Compile every template in a conf so that syntax errors fail when the routes file loads.

    Raises ``ValueError`` naming the field (``conf.day``) and Jinja's explanation.
    """
    if isinstance(template, str):
        _check_string(template, field)
        return
    _check_node(template, field)


def fixed_non_object(template: str) -> str | None:
    """What a ``conf_template`` renders to when its own text decides: the JSON type of a result
    that is not an object (``'["a", "b"]'`` is "an array" for every event), else None (the
    result depends on the event's values, or is an object)."""
    if _single_expression(template) is not None:
        return None
    try:
        rendered = _PROBE.from_string(template).render()
        value = json.loads(rendered)
    except Exception:
        return None
    return None if isinstance(value, dict) else _json_type(value)


def _check_node(node: Any, path: str) -> None:
    if isinstance(node, str):
        _check_string(node, path)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: key {key!r} must be a string (JSON object keys are)")
            _check_node(value, f"{path}.{key}")
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            _check_node(value, f"{path}[{index}]")


def _check_string(source: str, path: str) -> None:
    try:
        expression = _single_expression(source)
        if expression is not None:
            _compiled_expression(expression)
        else:
            _compiled_template(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"{path}: template syntax error: {exc.message}") from None


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def render_conf(
    template: Mapping[str, Any] | str | None,
    variables: Mapping[str, Any],
    *,
    max_bytes: int,
    route_name: str | None = None,
) -> dict[str, Any]:
    """Render a conf template to a JSON object of at most ``max_bytes`` UTF-8 bytes.

    ``template`` is a mapping (``conf:``), one template string (``conf_template:``) or None
    (an empty conf). Raises ``RejectedError`` with code ``template_error``, ``conf_not_object``,
    ``conf_not_json`` or ``conf_too_large``; the message names the route and field at fault.
    """
    where = f"route {route_name!r} " if route_name else ""
    if template is None:
        conf: Any = {}
    elif isinstance(template, str):
        conf = _render_conf_string(template, variables, where)
    else:
        conf = _render_node(template, variables, "conf", where)
    return check_conf(conf, max_bytes=max_bytes, where=where, origin="conf_template rendered to")


def _render_conf_string(source: str, variables: Mapping[str, Any], where: str) -> Any:
    rendered = _render_string(source, variables, "conf_template", where)
    if not isinstance(rendered, str):
        return rendered
    try:
        return json.loads(rendered)
    except json.JSONDecodeError as exc:
        raise RejectedError(
            "conf_not_json",
            f"{where}conf_template did not render to JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno} of the rendered text",
        ) from None


def _render_node(node: Any, variables: Mapping[str, Any], path: str, where: str) -> Any:
    if isinstance(node, str):
        return _render_string(node, variables, path, where)
    if isinstance(node, Mapping):
        return {
            key: _render_node(value, variables, f"{path}.{key}", where)
            for key, value in node.items()
        }
    if isinstance(node, list | tuple):
        return [
            _render_node(value, variables, f"{path}[{index}]", where)
            for index, value in enumerate(node)
        ]
    return node


def _render_string(source: str, variables: Mapping[str, Any], path: str, where: str) -> Any:
    try:
        expression = _single_expression(source)
        if expression is None:
            return _compiled_template(source).render(variables)
        value = _compiled_expression(expression)(**variables)
        if isinstance(value, Undefined):
            str(value)  # StrictUndefined raises here, with Jinja's own explanation
        return value
    except SecurityError as exc:
        raise _template_error(where, path, f"refused by the sandbox: {exc}") from None
    except TemplateSyntaxError as exc:
        raise _template_error(where, path, f"syntax error: {exc.message}") from None
    except Exception as exc:  # undefined variables, type errors in expressions ...
        raise _template_error(where, path, f"{type(exc).__name__}: {exc}") from None


def _template_error(where: str, path: str, reason: str) -> RejectedError:
    return RejectedError("template_error", f"{where}{path}: template failed: {reason}")


# ---------------------------------------------------------------------------------------------
# The conf rule: a JSON object of at most max_bytes bytes
# ---------------------------------------------------------------------------------------------


def check_conf(
    conf: object, *, max_bytes: int, where: str = "", origin: str = "conf is"
) -> dict[str, Any]:
    """``conf`` itself, if it is a JSON object of at most ``max_bytes`` bytes of ``compact_json``.

    Raises ``RejectedError`` with code ``conf_not_object``, ``conf_not_json`` (naming the first
    value JSON cannot hold: ``conf.rows[2] is nan``), ``conf_not_unicode`` (a lone surrogate,
    which JSON's ``\ud800`` escapes can smuggle in) or ``conf_too_large`` (with both sizes).
    ``where`` starts every message (``"route 'sales' "``); ``origin`` says what gave a value
    that is not an object (``"conf_template rendered to"``).
    """
    if not isinstance(conf, dict):
        raise RejectedError(
            "conf_not_object",
            f"{where}{origin} {_json_type(conf)}, but a DAG run conf must be a JSON object",
        )
    try:
        size = len(compact_json(conf).encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise RejectedError(
            "conf_not_unicode",
            f"{where}conf holds text that is not Unicode: a lone surrogate "
            f"({exc.object[exc.start : exc.end]!r}) where UTF-8 text was expected",
        ) from None
    except (TypeError, ValueError) as exc:
        problem = _first_non_json_value(conf, "conf") or str(exc)
        raise RejectedError(
            "conf_not_json", f"{where}conf is not JSON-serialisable: {problem}"
        ) from None
    if size > max_bytes:
        raise RejectedError(
            "conf_too_large",
            f"{where}conf is {size} bytes of JSON, over the limit of {max_bytes} bytes",
        )
    return conf


def compact_json(value: Any) -> str:
    """JSON without spaces, non-ASCII as is; NaN and Infinity raise ``ValueError``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


_JSON_SCALARS = (str, int, bool, type(None))


def _first_non_json_value(node: Any, path: str) -> str | None:
    """Where the first value JSON cannot hold sits, and what it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, (*_JSON_SCALARS, float)):
                return f"{path} has a key of type {type(key).__name__}"
            found = _first_non_json_value(value, f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(node, list | tuple):
        for index, value in enumerate(node):
            found = _first_non_json_value(value, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(node, float):
        return None if math.isfinite(node) else f"{path} is {node!r}, which JSON cannot hold"
    if isinstance(node, _JSON_SCALARS):
        return None
    return f"{path} is a {type(node).__name__}, not a JSON value"


def _json_type(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"
