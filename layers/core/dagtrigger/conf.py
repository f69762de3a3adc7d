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

    Every ``{{ }}`` is JSON-escaped by default, so an event's text can never add keys: inside a
    JSON string (``"s3://{{ key }}"``) a value is escaped as string content; anywhere else it
    is written as a JSON value (a string stays a string, ``true``, ``null``, numbers and
    objects are JSON). Only ``|tojson`` output is written as it is (it already is JSON).
    ``{% filter %}`` and ``{% call %}`` blocks, whose output would skip the escaping, are
    refused when the routes file loads.

Templates run in an immutable sandbox with strict undefined variables: reading a missing
variable, touching ``__class__`` and friends, or mutating a value is an error, never a blank.
Rendering is bounded while it runs, not checked afterwards: no value a template makes (a
string, a list, a number's digits) and no rendered text may exceed ``RENDER_SIZE_FACTOR``
times the conf limit, the values made add up to at most ``MADE_SIZE_FACTOR`` times that, and
one conf may take at most ``MAX_RENDER_STEPS`` steps (loop iterations, calls, filters,
operators and outputs) and ``MAX_RENDER_SECONDS``. Operations that could make a large value
from small arguments (``ljust``, ``center``, ``zfill``, ``format``, ``%``, ``*``, ``**``,
``join``, ``replace``, ``round`` ...) are measured before they run; ``lipsum`` is gone. Jinja's
sandbox has no hook for loops, ``~`` and literals, so templates are rewritten when compiled to
pass them through bounded filters (``_Instrument``).

``check_conf`` holds the rule every DAG run conf meets, whatever made it (a template, a
schedule, a webhook, an API caller): a JSON object of at most ``max_bytes`` bytes of
``compact_json``, UTF-8 encoded.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from functools import lru_cache, update_wrapper, wraps
from json.encoder import encode_basestring
from typing import Any

from jinja2 import (
    ChainableUndefined,
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    Undefined,
    nodes,
    pass_context,
    pass_environment,
    pass_eval_context,
)
from jinja2.environment import Environment
from jinja2.filters import do_mark_safe, make_attrgetter
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, markup_join, str_join
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
    SecurityError,
)
from jinja2.utils import Namespace, htmlsafe_json_dumps
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from dagtrigger.errors import RejectedError

# "{{ expr }}" and nothing else (Jinja's "-"/"+" whitespace markers allowed inside the braces).
_SINGLE_EXPRESSION = re.compile(r"\A\{\{[-+]?(?P<expr>.*?)[-+]?\}\}\Z", re.DOTALL)

#: how many times the conf limit (in characters, or items) a template may render in all, and
#: may make in any one value: room for a JSON template's whitespace, never a way round the limit
RENDER_SIZE_FACTOR = 4
#: how many times that bound a template may make in values in all (mostly temporaries: a value
#: made in a loop, or by map() over a list, counts each time it is made)
MADE_SIZE_FACTOR = 32
#: steps (loop iterations, calls, filters, operators, outputs) one conf may take
MAX_RENDER_STEPS = 100_000
#: wall-clock time one conf may take, checked at every step
MAX_RENDER_SECONDS = 1.0
#: how deeply a value may nest when a template makes it, measures it or writes it as JSON
MAX_VALUE_DEPTH = 100
#: the largest exponent ``**`` accepts (the result's size is bounded too)
_MAX_EXPONENT = 1_000
#: the longest explanation a template error keeps (Jinja's may quote a whole value)
_MAX_REASON_LENGTH = 1000
#: the conf limit the load-time probe renders with (the largest CONF_MAX_BYTES allows)
_PROBE_MAX_BYTES = 256 * 1024


# ---------------------------------------------------------------------------------------------
# The bounds of one rendering
# ---------------------------------------------------------------------------------------------


class _LimitExceeded(SecurityError):
    """A template went past a bound while rendering: a value's size, the steps or the time."""


class _OutputTooLarge(SecurityError):
    """The rendered text went past its bound."""


class _JsonText(str):
    """Text that is already JSON (``|tojson`` output, a rendered ``conf_template``)."""

    __slots__ = ()


class _JsonStringTracker:
    """Whether the JSON text written so far ends inside a string literal.

    Fed with every piece of rendered text as it streams out, so the escaping of the next
    ``{{ }}`` knows whether it sits between quotes.
    """

    __slots__ = ("escaped", "in_string")

    _STRING_SPECIALS = re.compile(r'["\\]')

    def __init__(self) -> None:
        self.in_string = False
        #: the last character written was a backslash inside a string
        self.escaped = False

    def feed(self, text: str) -> None:
        position = 0
        if self.escaped and text:
            self.escaped = False
            position = 1
        while True:
            if not self.in_string:
                position = text.find('"', position)
                if position < 0:
                    return
                self.in_string = True
                position += 1
                continue
            special = self._STRING_SPECIALS.search(text, position)
            if special is None:
                return
            if special.group() == '"':
                self.in_string = False
                position = special.end()
            elif special.end() == len(text):
                self.escaped = True
                return
            else:
                position = special.end() + 1


class _Render:
    """The budget of one ``render_conf`` call: sizes, steps, time, and the text written."""

    __slots__ = (
        "_fed",
        "_json",
        "_sizes",
        "deadline",
        "expression_output_left",
        "made_left",
        "max_bytes",
        "max_size",
        "output_left",
        "steps_left",
        "written",
    )

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_size = RENDER_SIZE_FACTOR * max_bytes
        self.steps_left = MAX_RENDER_STEPS
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS
        #: characters of rendered text still allowed
        self.output_left = self.max_size
        #: characters of ``{{ }}`` output still allowed, counted where they are made (text
        #: gathered by a macro or a ``{% set %}`` block is counted before it is joined)
        self.expression_output_left = self.max_size
        #: characters and items still allowed in values made, counted as each value is made
        self.made_left = MADE_SIZE_FACTOR * self.max_size
        #: the text the template being rendered has written so far
        self.written: list[str] = []
        self._json = _JsonStringTracker()
        self._fed = 0  # how many of written the JSON tracker has read
        #: sizes already measured, by id (the object is kept so that the id stays its own)
        self._sizes: dict[int, tuple[object, int]] = {}

    def step(self) -> None:
        self.steps_left -= 1
        if self.steps_left < 0:
            raise _LimitExceeded(
                f"the template took more than {MAX_RENDER_STEPS} steps (loop iterations, "
                "calls, filters, operators and outputs)"
            )
        if time.monotonic() > self.deadline:
            raise _LimitExceeded(f"the template ran longer than {MAX_RENDER_SECONDS:g} s")

    def check_size(self, size: int, what: str) -> None:
        if size > self.max_size:
            raise _LimitExceeded(
                f"{what} would make a value of {size} characters or items, over the "
                f"{self.max_size} a template may make ({RENDER_SIZE_FACTOR} x the conf limit "
                f"of {self.max_bytes} bytes)"
            )

    def checked(self, value: Any, what: str) -> Any:
        """``value``, once it is known to be within the bound, and counted as made."""
        self.check_size(self.size_of(value), what)
        self.made(value)
        return value

    def made(self, value: Any) -> None:
        """Count a value made while rendering by what it holds itself (its characters, digits
        or slots: what it holds in turn was counted when that was made)."""
        if isinstance(value, str | bytes | bytearray | list | tuple | dict | set | frozenset):
            self.made_left -= len(value)
        elif isinstance(value, int):
            self.made_left -= value.bit_length() // 3 + 1
        else:
            self.made_left -= 1
        if self.made_left < 0:
            total = MADE_SIZE_FACTOR * self.max_size
            raise _LimitExceeded(
                f"the template made more than {total} characters or items of values in all "
                f"({MADE_SIZE_FACTOR} x {RENDER_SIZE_FACTOR} x the conf limit of "
                f"{self.max_bytes} bytes)"
            )

    def remember(self, value: object, size: int) -> None:
        self._sizes[id(value)] = (value, size)

    def size_of(self, value: object, depth: int = 0) -> int:
        """Characters of text, digits, and items (shared items counted each time they appear:
        that is what writing the value out costs). Stops counting once over ``max_size``."""
        if isinstance(value, str | bytes | bytearray):
            return len(value)
        if isinstance(value, bool | float) or value is None:
            return 1
        if isinstance(value, int):
            return value.bit_length() // 3 + 1  # an upper bound of its decimal digits
        if isinstance(value, range):
            return len(value)
        if isinstance(value, Namespace):
            # The one value a template can change: measured afresh each time, never remembered.
            attributes = getattr(value, "_Namespace__attrs", {})
            return self._size_of_items(attributes, depth, namespaces_allowed=True)
        if not isinstance(value, list | tuple | dict | set | frozenset):
            return 1
        known = self._sizes.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        size = self._size_of_items(value, depth, namespaces_allowed=False)
        self.remember(value, size)
        return size

    def _size_of_items(self, container: Any, depth: int, *, namespaces_allowed: bool) -> int:
        if depth >= MAX_VALUE_DEPTH:
            raise _LimitExceeded(f"a value nests more than {MAX_VALUE_DEPTH} levels deep")
        items: Iterable[Any] = (
            itertools.chain.from_iterable(container.items())
            if isinstance(container, dict)
            else container
        )
        total = 1
        for item in items:
            if isinstance(item, Namespace) and not namespaces_allowed:
                raise _LimitExceeded(
                    "a namespace() cannot be held in a list, tuple or dict (it can change "
                    "after it was measured)"
                )
            total += self.size_of(item, depth + 1)
            if total > self.max_size:
                break
        return total

    def start_text(self) -> list[str]:
        self.written = []
        self._json = _JsonStringTracker()
        self._fed = 0
        return self.written

    def too_much_text(self) -> _OutputTooLarge:
        return _OutputTooLarge(
            f"its rendered text went over {self.max_size} characters ({RENDER_SIZE_FACTOR} x "
            f"the conf limit of {self.max_bytes} bytes), so the conf would be too large"
        )

    def in_json_string(self) -> bool:
        """Whether the text written so far ends inside a JSON string literal."""
        written, tracker = self.written, self._json
        while self._fed < len(written):
            tracker.feed(written[self._fed])
            self._fed += 1
        return tracker.in_string

    def expression_output(self, text: str) -> str:
        self.expression_output_left -= len(text)
        if self.expression_output_left < 0:
            raise _OutputTooLarge(
                f"its {{{{ }}}} expressions wrote over {self.max_size} characters "
                f"({RENDER_SIZE_FACTOR} x the conf limit of {self.max_bytes} bytes), so the "
                "conf would be too large"
            )
        return text

    def stepped(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.step()
            yield item


_ACTIVE: ContextVar[_Render | None] = ContextVar("dagtrigger_conf_render", default=None)


def _active() -> _Render:
    render = _ACTIVE.get()
    if render is None:
        # Also what keeps Jinja from folding a bounded filter into a constant at compile time.
        raise SecurityError("conf templates render only inside render_conf's bounds")
    return render


# ---------------------------------------------------------------------------------------------
# Sizes that operations would make, measured before they run
# ---------------------------------------------------------------------------------------------

_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})

# One printf conversion: %(key)-08.3f, %*d, %%.
_PRINTF_CONVERSION = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?"
    r"(?P<conversion>.)",
    re.DOTALL,
)
# The width and precision of a str.format spec: [[fill]align][sign][z][#][0][width][,_][.prec]
_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?")


def _printf_size(render: _Render, template: str, values: Any) -> int:
    """An upper bound of the length of ``template % values``."""
    mapping = values if isinstance(values, Mapping) else None
    if isinstance(values, tuple):
        positional = iter(values)
    else:
        positional = iter(() if mapping is not None else (values,))
    total = len(template)
    for conversion in _PRINTF_CONVERSION.finditer(template):
        if conversion["conversion"] == "%":
            continue
        widths = [0]
        for number in (conversion["width"], conversion["precision"]):
            if number == "*":
                given = next(positional, 0)
                widths.append(given if isinstance(given, int) else 0)
            elif number:
                widths.append(int(number))
        key = conversion["key"]
        value = (
            mapping.get(key) if mapping is not None and key is not None else next(positional, "")
        )
        written = render.size_of(value)
        if conversion["conversion"] in "ra":
            written *= 10  # repr() and ascii() escape: "\U0001f600" for one character
        total += max(*widths, written)
    return total


def _replaced_size(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    """An upper bound of the length of ``text.replace(old, new, count)``."""
    try:
        found = text.count(old) if len(old) else len(text) + 1
    except TypeError:
        return 0  # the call itself will explain
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def _check_method_call(render: _Render, method: Any, args: tuple[Any, ...], kwargs: Any) -> tuple:
    """Measure a call of a built-in method that could make a large value from small arguments;
    return its arguments (``join``'s iterable is read here, to be measured)."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if isinstance(owner, str | bytes | bytearray):
        what = f"{type(owner).__name__}.{name}()"
        if name in _PADDING_METHODS and args and isinstance(args[0], int):
            render.check_size(args[0], what)
        elif name == "expandtabs":
            tabsize = args[0] if args else kwargs.get("tabsize", 8)
            tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
            if isinstance(tabsize, int):
                render.check_size(len(owner) + tabs * max(tabsize, 0), what)
        elif name == "replace" and len(args) >= 2:
            render.check_size(_replaced_size(owner, *args[:3]), what)
        elif name == "translate" and args and isinstance(args[0], Mapping):
            longest = max(
                (len(target) for target in args[0].values() if isinstance(target, str)),
                default=1,
            )
            render.check_size(len(owner) * max(longest, 1), what)
        elif name == "join" and args:
            parts = list(render.stepped(args[0]))
            joined = sum(render.size_of(part) for part in parts)
            render.check_size(joined + len(owner) * max(len(parts) - 1, 0), what)
            return (parts, *args[1:])
    elif isinstance(owner, int) and name == "to_bytes":
        length = args[0] if args else kwargs.get("length", 1)
        if isinstance(length, int):
            render.check_size(length, "int.to_bytes()")
    return args


_SEQUENCES = (str, bytes, list, tuple)


def _check_binop(render: _Render, operator_name: str, left: Any, right: Any) -> None:
    what = f"the {operator_name!r} operator"
    if operator_name == "+":
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            render.check_size(render.size_of(left) + render.size_of(right), what)
    elif operator_name == "*":
        for sequence, times in ((left, right), (right, left)):
            if isinstance(sequence, _SEQUENCES) and isinstance(times, int):
                render.check_size(render.size_of(sequence) * max(times, 0), what)
        if isinstance(left, int) and isinstance(right, int):
            render.check_size((left.bit_length() + right.bit_length()) // 3 + 1, what)
    elif operator_name == "**":
        if isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            raise _LimitExceeded(f"exponent {right} is larger than {_MAX_EXPONENT}")
        if isinstance(left, int) and isinstance(right, int) and right > 0:
            render.check_size(left.bit_length() * right // 3 + 1, what)
    elif operator_name == "%" and isinstance(left, str):
        render.check_size(_printf_size(render, left, right), what)


class _BoundedFormatter(SandboxedFormatter):
    """The sandbox's ``str.format``, measuring each field before formatting it, and the text
    made so far."""

    _made = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._made = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        render = _active()
        render.step()
        spec = _FORMAT_SPEC.match(format_spec)
        widths = [int(number) for number in spec.groups() if number] if spec else []
        render.check_size(self._made + max(render.size_of(value), *widths, 0), "str.format()")
        text = super().format_field(value, format_spec)
        self._made += len(text)
        render.check_size(self._made, "str.format()")
        return text


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    """The same for ``Markup.format``, which escapes each field."""


# ---------------------------------------------------------------------------------------------
# Filters: every one counts a step and its result is measured; some are measured before
# ---------------------------------------------------------------------------------------------


def _arg(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str, default: Any
) -> Any:
    """A filter's argument, given by position or by Jinja's name for it."""
    return args[index] if len(args) > index else kwargs.get(name, default)


def _center_args(render: _Render, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple:
    width = _arg(args, kwargs, 1, "width", 80)
    if isinstance(width, int):
        render.check_size(width, "the center filter")
    return args


def _indent_args(render: _Render, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple:
    text = str(_arg(args, kwargs, 0, "s", ""))
    width = _arg(args, kwargs, 1, "width", 4)
    indent = width if isinstance(width, int) else len(str(width))
    render.check_size(len(text) + (text.count("\n") + 1) * indent, "the indent filter")
    return args


def _wordwrap_args(render: _Render, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple:
    text = str(_arg(args, kwargs, 0, "s", ""))
    width = _arg(args, kwargs, 1, "width", 79)
    wrapstring = _arg(args, kwargs, 3, "wrapstring", None) or "\n"
    # Any two lines in a row hold more than width characters, and each holds at least one.
    lines = min(2 * len(text) // max(width if isinstance(width, int) else 1, 1), len(text))
    lines += text.count("\n") + 2
    render.check_size(len(text) + lines * len(str(wrapstring)), "the wordwrap filter")
    return args


def _format_args(render: _Render, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple:
    template = str(_arg(args, kwargs, 0, "value", ""))
    render.check_size(_printf_size(render, template, kwargs or args[1:]), "the format filter")
    return args


def _join_args(render: _Render, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple:
    if not args:
        return args
    parts = list(render.stepped(args[0]))  # read here to be measured; joined from this list
    separator = str(_arg(args, kwargs, 1, "d", ""))
    joined = sum(render.size_of(part) for part in parts)
    render.check_size(joined + len(separator) * max(len(parts) - 1, 0), "the join filter")
    return (parts, *args[1:])


def _replace_args(render: _Render, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple:
    text, old, new = (
        str(_arg(args, kwargs, i, name, "")) for i, name in enumerate(("s", "old", "new"))
    )
    count = _arg(args, kwargs, 3, "count", None)
    render.check_size(
        _replaced_size(text, old, new, -1 if count is None else count), "the replace filter"
    )
    return args


def _batch_args(render: _Render, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple:
    linecount = _arg(args, kwargs, 1, "linecount", 0)
    if _arg(args, kwargs, 2, "fill_with", None) is not None and isinstance(linecount, int):
        render.check_size(linecount, "the batch filter")  # the last batch is filled up to it
    return args


def _slice_args(render: _Render, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple:
    slices = _arg(args, kwargs, 1, "slices", 0)
    if isinstance(slices, int):
        render.check_size(slices, "the slice filter")
    return args


def _round_args(render: _Render, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple:
    # The floor and ceil methods compute value * 10 ** n: a string or a list would repeat.
    _require_number(_arg(args, kwargs, 0, "value", 0), "the round filter")
    # round(5, -n) computes 10 ** n too: n digits
    precision = _arg(args, kwargs, 1, "precision", 0)
    if isinstance(precision, int):
        render.check_size(abs(precision), "the round filter's precision")
    return args


def _pprint_args(render: _Render, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple:
    render.check_size(render.size_of(_arg(args, kwargs, 0, "value", None)), "the pprint filter")
    return args


def _urlize_args(render: _Render, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple:
    # Each link repeats the target and rel given: measure them against the links possible.
    text = str(_arg(args, kwargs, 0, "value", ""))
    extra = len(str(_arg(args, kwargs, 3, "target", None) or ""))
    extra += len(str(_arg(args, kwargs, 4, "rel", None) or ""))
    render.check_size(2 * len(text) + (len(text) // 4 + 1) * extra, "the urlize filter")
    return args


def _require_number(value: Any, what: str) -> None:
    if not isinstance(value, int | float):
        raise TypeError(f"{what} needs a number, not {type(value).__name__}")


def _numeric_test(name: str, test: Callable[..., Any]) -> Callable[..., bool]:
    """``odd``, ``even`` and ``divisibleby`` compute ``value % n``: for a string that is printf
    formatting (``'%100000000s' is odd``), so they take numbers only."""

    @wraps(test)
    def numbers_only(value: Any, *args: Any) -> bool:
        _require_number(value, f"the {name} test")
        return test(value, *args)

    return numbers_only


#: filters that could make a large value from small arguments, measured before they run: each
#: takes the filter's arguments (after Jinja's context or environment) and gives them back
_FILTER_ARGS: Mapping[str, Callable[[_Render, tuple[Any, ...], Mapping[str, Any]], tuple]] = {
    "center": _center_args,
    "indent": _indent_args,
    "wordwrap": _wordwrap_args,
    "format": _format_args,
    "join": _join_args,
    "replace": _replace_args,
    "batch": _batch_args,
    "slice": _slice_args,
    "pprint": _pprint_args,
    "round": _round_args,
    "urlize": _urlize_args,
}


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    measure_args = _FILTER_ARGS.get(name)
    passes_first = getattr(function, "jinja_pass_arg", None) is not None

    @wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        render = _active()
        render.step()
        if measure_args is not None:
            head, tail = (args[:1], args[1:]) if passes_first else ((), args)
            args = (*head, *measure_args(render, tail, kwargs))
        return render.checked(function(*args, **kwargs), f"the {name} filter")

    return bounded


def _tojson(value: Any, indent: int | str | None = None) -> _JsonText:
    """Jinja's ``tojson`` (HTML-safe, keys sorted), measured, marked as JSON."""
    render = _active()
    render.check_size(render.size_of(value), "the tojson filter")
    if indent is not None:
        # Each line repeats the indent once per level: the deepest value allowed bounds it.
        width = indent if isinstance(indent, int) else len(str(indent))
        render.check_size(width * MAX_VALUE_DEPTH, "the tojson filter's indent")

    def dumps(obj: Any, **kwargs: Any) -> str:
        if kwargs.get("indent") is None:
            return json.dumps(obj, **kwargs)
        written: list[str] = []
        size = 0
        for chunk in json.JSONEncoder(**kwargs).iterencode(obj):
            size += len(chunk)
            render.check_size(size, "the tojson filter")
            written.append(chunk)
        return "".join(written)

    return _JsonText(htmlsafe_json_dumps(value, dumps=dumps, sort_keys=True, indent=indent))


def _safe(value: Any) -> Any:
    """``|safe`` leaves ``|tojson`` output as JSON (``x | tojson | safe`` keeps working)."""
    return value if isinstance(value, _JsonText) else do_mark_safe(value)


@pass_environment
def _sum(environment: Environment, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    """Jinja's ``sum``, with lists and tuples joined in one pass (``+`` each time is quadratic)."""
    render = _active()
    values = list(iterable)
    if attribute is not None:
        value_of = make_attrgetter(environment, attribute)
        values = [value_of(value) for value in values]
    if isinstance(start, list | tuple):
        for value in values:
            if type(value) is not type(start):
                raise TypeError(
                    f"can only concatenate {type(start).__name__} "
                    f"(not {type(value).__name__!r}) to {type(start).__name__}"
                )
        total = render.size_of(start) + sum(render.size_of(value) for value in values)
        render.check_size(total, "the sum filter")
        return type(start)(itertools.chain(start, *values))
    return sum(values, start)


def _stepped_loop(iterable: Any) -> Iterator[Any]:
    """What every ``{% for %}`` iterates: one step per item."""
    return _active().stepped(iterable)


@pass_eval_context
def _concat(eval_context: EvalContext, values: tuple[Any, ...]) -> str:
    """The ``~`` operator, measured before it joins."""
    render = _active()
    render.step()
    render.check_size(sum(render.size_of(value) for value in values), "the '~' operator")
    joined = markup_join(values) if eval_context.autoescape else str_join(values)
    return render.checked(joined, "the '~' operator")


def _made(value: Any) -> Any:
    """A list, tuple or dict written in the template (``[x, x]`` shares, but is written twice)."""
    return _active().checked(value, "a literal")


# Internal filter names hold a character Jinja's syntax never allows in one.
_LOOP_FILTER = "dagtrigger:loop"
_CONCAT_FILTER = "dagtrigger:concat"
_MADE_FILTER = "dagtrigger:made"


class _Instrument(NodeTransformer):
    """Route the operations the sandbox has no hook for (loops, ``~``, literals) through
    bounded filters, and refuse the blocks whose output would skip JSON escaping."""

    def __init__(self, *, json_text: bool) -> None:
        self.json_text = json_text

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _wrapped(node.iter, _LOOP_FILTER)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        operands = nodes.Tuple(node.nodes, "load", lineno=node.lineno)
        return _wrapped(operands, _CONCAT_FILTER)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return _wrapped(node, _MADE_FILTER)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        return _wrapped(node, _MADE_FILTER)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        return _wrapped(node, _MADE_FILTER) if node.ctx == "load" else node

    def visit_FilterBlock(self, node: nodes.FilterBlock) -> nodes.Node:
        return self._unescaped_block(node, "{% filter %}", "the | filter form inside {{ }}")

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        return self._unescaped_block(node, "{% call %}", "a macro called inside {{ }}")

    def _unescaped_block(self, node: nodes.Node, block: str, instead: str) -> nodes.Node:
        if self.json_text:
            raise TemplateSyntaxError(
                f"{block} blocks cannot be used in a conf_template: their output would skip "
                f"the JSON escaping; use {instead}",
                node.lineno,
            )
        self.generic_visit(node)
        return node


def _wrapped(node: nodes.Node, filter_name: str) -> nodes.Filter:
    return nodes.Filter(node, filter_name, [], [], None, None, lineno=node.lineno)


# ---------------------------------------------------------------------------------------------
# What every {{ }} writes
# ---------------------------------------------------------------------------------------------


@pass_context
def _finalize_text(context: Context, value: Any) -> Any:
    """A ``conf:`` leaf's ``{{ }}``: the value's text, counted."""
    render = _active()
    render.step()
    if isinstance(value, str):
        render.expression_output(value)
        return value
    return render.expression_output(str(value))


@pass_context
def _finalize_json(context: Context, value: Any) -> str:
    """A ``conf_template``'s ``{{ }}``: escaped for where it stands in the JSON text."""
    render = _active()
    render.step()
    if render.in_json_string():
        text = value if isinstance(value, str) else str(value)
        return render.expression_output(encode_basestring(text)[1:-1])
    if isinstance(value, _JsonText):
        return render.expression_output(value)
    return render.expression_output(_json_value(render, value))


def _json_value(render: _Render, value: Any) -> str:
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, bool) or value is None:
        return "true" if value else "false" if value is not None else "null"
    if type(value) is int:
        render.check_size(render.size_of(value), "a {{ }} expression")
        return repr(value)
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises here, with Jinja's own explanation
        return "null"  # the load-time probe's undefined
    render.check_size(render.size_of(value), "a {{ }} expression")
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        problem = _first_non_json_value(value, "the value") or "the value is not JSON"
        raise TypeError(
            f"{{{{ }}}} outside a JSON string must give a JSON value, but {problem} "
            "(a filter such as |string, |list or |tojson can turn it into one)"
        ) from None


# ---------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------


class _ConfSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every operation that makes values or repeats work bounded."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, *, undefined: type[Undefined], json_text: bool) -> None:
        super().__init__(
            undefined=undefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_finalize_json if json_text else _finalize_text,
        )
        self.json_text = json_text
        del self.globals["lipsum"]  # lipsum(10 ** 9) writes a billion paragraphs
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters.update(
            tojson=_bounded_filter("tojson", _tojson),
            safe=_bounded_filter("safe", _safe),
            sum=_bounded_filter("sum", _sum),
        )
        tests: dict[str, Any] = self.tests
        for name in ("odd", "even", "divisibleby"):
            tests[name] = _numeric_test(name, tests[name])
        self.filters[_LOOP_FILTER] = _stepped_loop
        self.filters[_CONCAT_FILTER] = _concat
        self.filters[_MADE_FILTER] = _made

    def from_string(
        self,
        source: str | nodes.Template,
        globals: MutableMapping[str, Any] | None = None,
        template_class: type[Template] | None = None,
    ) -> Template:
        tree = self.parse(source) if isinstance(source, str) else source
        tree = _Instrument(json_text=self.json_text).visit(tree)
        tree.set_environment(self)
        return super().from_string(tree, globals, template_class)

    def concat(self, parts: Iterable[str]) -> str:
        """Joins the text a macro or a ``{% set %}``/``{% filter %}`` block gathered."""
        render = _active()
        render.step()
        gathered: list[str] = []
        size = 0
        for part in parts:
            size += len(part)
            render.check_size(size, "a block")
            gathered.append(part)
        return "".join(gathered)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        render = _active()
        render.step()
        if isinstance(obj, LoopContext) and args:  # loop(children) in a recursive loop
            args = (render.stepped(args[0]), *args[1:])
        args = _check_method_call(render, obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        return render.checked(result, f"calling {getattr(obj, '__name__', 'a function')}")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        render = _active()
        render.step()
        _check_binop(render, operator, left, right)
        result = self.binop_table[operator](left, right)
        render.made(result)
        if operator == "+" and isinstance(result, list | tuple):
            render.remember(result, render.size_of(left) + render.size_of(right) - 1)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """The sandbox's ``str.format``, with each field measured before it is formatted."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or (
            value.__name__ not in ("format", "format_map")
        ):
            return None
        template = value.__self__
        if not isinstance(template, str):
            return None
        text_type = type(template)
        formatter: SandboxedFormatter
        if isinstance(template, Markup):
            formatter = _BoundedEscapeFormatter(self, escape=template.escape)
        else:
            formatter = _BoundedFormatter(self)
        is_format_map = value.__name__ == "format_map"

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            if not is_format_map:
                return text_type(formatter.vformat(template, args, kwargs))
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one positional argument")
            return text_type(formatter.vformat(template, (), args[0]))

        return update_wrapper(bounded_format, value)


_TEXT_ENV = _ConfSandbox(undefined=StrictUndefined, json_text=False)
_JSON_ENV = _ConfSandbox(undefined=StrictUndefined, json_text=True)
#: renders a conf_template with every variable unknown, to see the shape its literal text gives
_PROBE_ENV = _ConfSandbox(undefined=ChainableUndefined, json_text=True)


def _environment(json_text: bool) -> _ConfSandbox:
    return _JSON_ENV if json_text else _TEXT_ENV


@lru_cache(maxsize=1024)
def _compiled_template(source: str, json_text: bool) -> Template:
    return _environment(json_text).from_string(source)


@lru_cache(maxsize=1024)
def _compiled_expression(expression: str, json_text: bool) -> Callable[..., Any]:
    return _environment(json_text).compile_expression(expression, undefined_to_none=False)


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


def _generate(
    template: Template, variables: Mapping[str, Any], render: _Render, *, json_text: bool
) -> str:
    """Stream the template, stopping as soon as its text passes the bound."""
    written = render.start_text()
    left = render.output_left
    for chunk in template.root_render_func(template.new_context(dict(variables))):
        left -= len(chunk)
        if left < 0:
            raise render.too_much_text()
        written.append(chunk)
    render.output_left = left
    text = "".join(written)
    return _JsonText(text) if json_text else text


# ---------------------------------------------------------------------------------------------
# Load-time checks (called by the routes file validation)
# ---------------------------------------------------------------------------------------------


def check_conf_template(template: Mapping[str, Any] | str, *, field: str) -> None:
    """Compile every template in a conf so that syntax errors fail when the routes file loads.

    Raises ``ValueError`` naming the field (``conf.day``) and Jinja's explanation.
    """
    if isinstance(template, str):
        _check_string(template, field, json_text=True)
        return
    _check_node(template, field)


def check_text_template(template: str, *, field: str) -> None:
    """Compile a template that renders to text (an asset URI); a syntax error names ``field``."""
    _check_string(template, field, json_text=False)


def fixed_non_object(template: str) -> str | None:
    """What a ``conf_template`` renders to when its own text decides: the JSON type of a result
    that is not an object (``'["a", "b"]'`` is "an array" for every event), else None (the
    result depends on the event's values, or is an object)."""
    if _single_expression(template) is not None:
        return None
    render = _Render(_PROBE_MAX_BYTES)
    token = _ACTIVE.set(render)
    try:
        probe = _PROBE_ENV.from_string(template)
        value = json.loads(_generate(probe, {}, render, json_text=True))
    except Exception:
        return None
    finally:
        _ACTIVE.reset(token)
    return None if isinstance(value, dict) else _json_type(value)


def _check_node(node: Any, path: str) -> None:
    if isinstance(node, str):
        _check_string(node, path, json_text=False)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: key {key!r} must be a string (JSON object keys are)")
            _check_node(value, f"{path}.{key}")
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            _check_node(value, f"{path}[{index}]")


def _check_string(source: str, path: str, *, json_text: bool) -> None:
    try:
        expression = _single_expression(source)
        if expression is not None:
            _compiled_expression(expression, json_text)
        else:
            _compiled_template(source, json_text)
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
    (an empty conf). Rendering is bounded as it runs (see the module's doc). Raises
    ``RejectedError`` with code ``template_error`` (including a sandbox refusal or a bound
    reached), ``conf_not_object``, ``conf_not_json`` or ``conf_too_large`` (including rendered
    text over its bound); the message names the route and field at fault.
    """
    where = f"route {route_name!r} " if route_name else ""
    if template is None:
        conf: Any = {}
    else:
        token = _ACTIVE.set(_Render(max_bytes))
        try:
            if isinstance(template, str):
                conf = _render_conf_string(template, variables, where)
            else:
                conf = _render_node(template, variables, "conf", where)
        finally:
            _ACTIVE.reset(token)
    return check_conf(conf, max_bytes=max_bytes, where=where, origin="conf_template rendered to")


def render_text(
    template: str,
    variables: Mapping[str, Any],
    *,
    max_chars: int,
    field: str,
    route_name: str | None = None,
) -> str:
    """Render a template to text of at most ``max_chars`` characters (a lone ``{{ expr }}``
    whose value is a number or a boolean gives its JSON text). Raises ``RejectedError`` with
    code ``template_error`` naming the route and ``field``."""
    where = f"route {route_name!r} " if route_name else ""
    too_long = _template_error(where, field, f"rendered to more than {max_chars} characters")
    token = _ACTIVE.set(_Render(max_chars))
    try:
        value = _render_string(template, variables, field, where, json_text=False)
    except RejectedError as refused:
        if refused.code == "conf_too_large":  # the bound of the rendered text was reached
            raise too_long from None
        raise
    finally:
        _ACTIVE.reset(token)
    if isinstance(value, bool | int | float):
        value = json.dumps(value)
    if not isinstance(value, str):
        raise _template_error(where, field, f"rendered to {_json_type(value)}, not text")
    if len(value) > max_chars:
        raise too_long
    return str(value)


def _render_conf_string(source: str, variables: Mapping[str, Any], where: str) -> Any:
    rendered = _render_string(source, variables, "conf_template", where, json_text=True)
    if not isinstance(rendered, _JsonText):
        return rendered  # a lone expression's value; a plain string stays a string
    try:
        return json.loads(rendered)
    except json.JSONDecodeError as exc:
        raise RejectedError(
            "conf_not_json",
            f"{where}conf_template did not render to JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno} of the rendered text",
        ) from None
    except ValueError as exc:  # a number longer than Python converts (4,300 digits)
        reason = str(exc).split(":", 1)[0]
        raise RejectedError(
            "conf_not_json", f"{where}conf_template did not render to usable JSON: {reason}"
        ) from None


def _render_node(node: Any, variables: Mapping[str, Any], path: str, where: str) -> Any:
    if isinstance(node, str):
        return _render_string(node, variables, path, where, json_text=False)
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


def _render_string(
    source: str, variables: Mapping[str, Any], path: str, where: str, *, json_text: bool
) -> Any:
    try:
        expression = _single_expression(source)
        if expression is None:
            template = _compiled_template(source, json_text)
            return _generate(template, variables, _active(), json_text=json_text)
        value = _compiled_expression(expression, json_text)(**variables)
        if isinstance(value, Undefined):
            str(value)  # StrictUndefined raises here, with Jinja's own explanation
        return value
    except _OutputTooLarge as exc:
        raise RejectedError("conf_too_large", f"{where}{path}: {exc}") from None
    except SecurityError as exc:
        raise _template_error(where, path, f"refused by the sandbox: {exc}") from None
    except TemplateSyntaxError as exc:
        raise _template_error(where, path, f"syntax error: {exc.message}") from None
    except RecursionError:
        reason = "refused by the sandbox: recursion too deep"
        raise _template_error(where, path, reason) from None
    except Exception as exc:  # undefined variables, type errors in expressions ...
        raise _template_error(where, path, f"{type(exc).__name__}: {exc}") from None


def _template_error(where: str, path: str, reason: str) -> RejectedError:
    if len(reason) > _MAX_REASON_LENGTH:  # an error may quote a value: keep records small
        reason = reason[: _MAX_REASON_LENGTH - 1] + "…"
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
