"""A template's Parameters: overrides or defaults, checked against their constraints."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from devstack.runner.cfn_yaml import TemplateError


def parameter_values(
    declared: Mapping[str, Any], overrides: dict[str, str | list[str]]
) -> dict[str, Any]:
    """Each declared parameter's value: a string, or a list for list types."""
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(
            f"parameter_overrides: {', '.join(unknown)} not declared in Parameters "
            f"(declared: {', '.join(sorted(declared)) or 'none'})"
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        where = f"Parameters.{name}"
        if name in overrides:
            raw = overrides[name]
            text = ",".join(raw) if isinstance(raw, list) else str(raw)
        elif "Default" in spec:
            default = spec["Default"]
            text = ",".join(map(str, default)) if isinstance(default, list) else str(default)
        else:
            raise TemplateError(f"{where}: has no Default; pass a value in parameter_overrides")
        parameter_type = str(spec.get("Type", "String"))
        is_list = parameter_type == "CommaDelimitedList" or parameter_type.startswith("List<")
        if is_list:
            # CloudFormation matches a list's AllowedPattern against each of its values.
            items = [item.strip() for item in text.split(",")]
            for item in items:
                _validate_parameter(item, spec, where)
            values[name] = items
        else:
            _validate_parameter(text, spec, where)
            values[name] = text
    return values


def _validate_parameter(text: str, spec: Mapping[str, Any], where: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and text not in [str(item) for item in allowed]:
        raise TemplateError(f"{where}: {text!r} is not one of {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), text) is None:
        raise TemplateError(f"{where}: {text!r} does not match AllowedPattern {pattern!r}")
    if "MinLength" in spec and len(text) < int(spec["MinLength"]):
        raise TemplateError(f"{where}: {text!r} is shorter than MinLength {spec['MinLength']}")
    if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
        raise TemplateError(f"{where}: {text!r} is longer than MaxLength {spec['MaxLength']}")
    if str(spec.get("Type", "String")) == "Number":
        try:
            number = float(text)
        except ValueError:
            raise TemplateError(f"{where}: {text!r} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"{where}: {text} is below MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"{where}: {text} is above MaxValue {spec['MaxValue']}")
