"""Load the routes file from the layer, a file, an SSM parameter or an S3 object, and cache it.

Locations:

* ``bundled:NAME``: a file shipped in the layer beside the ``dagtrigger`` package;
* ``file:PATH``: any local file;
* ``ssm:/PARAMETER/NAME``: an SSM parameter (String or SecureString);
* ``s3://BUCKET/KEY``: an S3 object.

A bad file fails loudly: ``RoutesConfigError`` names the location, the field
(``s3[2].dag_id``) and its line in the YAML. Once a good file has loaded, a refresh that
fails keeps serving the last good routes and logs a warning, so a bad edit to the parameter
never stops triggering.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

import dagtrigger
from dagtrigger.errors import RoutesConfigError, RoutesFileProblem
from dagtrigger.observability import MetricName, count, logger
from dagtrigger.routes.model import RoutesFile
from dagtrigger.validation import (
    FieldProblem,
    Location,
    field_problems,
    format_location,
    short_repr,
)

ClientFactory = Callable[[], Any]
LocationKind = Literal["bundled", "file", "ssm", "s3"]


def _no_client(service: str) -> ClientFactory:
    def missing() -> Any:
        raise RoutesConfigError(f"no {service} client was given to read the routes file")

    return missing


# ---------------------------------------------------------------------------------------------
# Locations
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutesLocation:
    kind: LocationKind
    target: str  # a path, a parameter name, or "bucket/key"
    text: str  # as the user wrote it

    @property
    def refreshable(self) -> bool:
        """A bundled file ships in the layer: it never changes under a running function."""
        return self.kind != "bundled"


def parse_location(location: str) -> RoutesLocation:
    """Split ``bundled:NAME``, ``file:PATH``, ``ssm:/NAME`` or ``s3://BUCKET/KEY``."""
    if location.startswith("bundled:"):
        name = location.removeprefix("bundled:")
        if not name or "/" in name or "\\" in name or name in {".", ".."}:
            raise RoutesConfigError(
                f"routes location {location!r}: bundled:NAME takes a file name, not a path"
            )
        return RoutesLocation("bundled", name, location)
    if location.startswith("file:"):
        path = location.removeprefix("file:")
        if not path:
            raise RoutesConfigError(f"routes location {location!r}: file: needs a path")
        return RoutesLocation("file", path, location)
    if location.startswith("ssm:"):
        name = location.removeprefix("ssm:")
        if not name.startswith("/") and not name.startswith("arn:"):
            raise RoutesConfigError(
                f"routes location {location!r}: write ssm:/PARAMETER/NAME (a leading '/')"
            )
        return RoutesLocation("ssm", name, location)
    if location.startswith("s3://"):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise RoutesConfigError(f"routes location {location!r}: write s3://BUCKET/KEY")
        return RoutesLocation("s3", f"{bucket}/{key}", location)
    raise RoutesConfigError(
        f"routes location {location!r} is not one of bundled:NAME, file:PATH, "
        "ssm:/PARAMETER/NAME or s3://BUCKET/KEY"
    )


#: where ``bundled:NAME`` files are: ``layers/core/`` in the source tree, ``/opt/python/`` in
#: the Lambda layer
BUNDLED_ROOT = Path(dagtrigger.__file__).resolve().parent.parent


def bundled_path(name: str, root: Path = BUNDLED_ROOT) -> Path:
    return root / name


# ---------------------------------------------------------------------------------------------
# Parsing with line numbers
# ---------------------------------------------------------------------------------------------


def parse_routes(
    text: str,
    *,
    source: str,
    allowed_environment_names: Collection[str] = (),
    granted_manifest_location: str | None = None,
) -> RoutesFile:
    """Parse and validate a routes file; errors name the field and the line in ``source``.

    ``allowed_environment_names``: the environments the stack may trigger (its IAM grants); an
    environment named otherwise is a problem of the file. Empty: any name.
    ``granted_manifest_location``: where the stack may write file sets' manifests (its
    SetManifestLocation; "" for nowhere); a manifest elsewhere is a problem. None: no check.
    """
    root, data = _load_yaml(text, source)
    context = {
        RoutesFile.ALLOWED_ENVIRONMENTS: tuple(allowed_environment_names),
        RoutesFile.GRANTED_MANIFEST_LOCATION: granted_manifest_location,
    }
    try:
        return RoutesFile.model_validate(data, context=context)
    except ValidationError as exc:
        problems = [_routes_problem(root, problem) for problem in field_problems(exc)]
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise RoutesConfigError(
            f"invalid routes file {source}:\n{listed}", problems=problems
        ) from None


def _load_yaml(text: str, source: str) -> tuple[yaml.Node, Any]:
    try:
        loader = yaml.SafeLoader(text)  # refuses characters YAML does not allow, at once
    except yaml.YAMLError as exc:
        raise _file_problem(source, None, str(exc).replace("\n", " ")) from None
    try:
        root = loader.get_single_node()
        if root is None:
            raise _file_problem(source, None, "the file is empty")
        _reject_duplicate_keys(root, source)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        problem = exc.problem or exc.context or "YAML error"
        raise RoutesConfigError(
            f"invalid routes file {source}: {where}: {problem}",
            problems=[RoutesFileProblem(None, mark.line + 1 if mark else None, problem)],
        ) from None
    except yaml.YAMLError as exc:
        raise _file_problem(source, None, str(exc)) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        line = root.start_mark.line + 1
        problem = "the top level must be a mapping with version, environments and route lists"
        raise RoutesConfigError(
            f"invalid routes file {source} (line {line}): {problem}",
            problems=[RoutesFileProblem(None, line, problem)],
        )
    return root, data


def _file_problem(source: str, line: int | None, problem: str) -> RoutesConfigError:
    """``invalid routes file SOURCE: PROBLEM``, with the problem listed on its own."""
    return RoutesConfigError(
        f"invalid routes file {source}: {problem}",
        problems=[RoutesFileProblem(None, line, problem)],
    )


def _reject_duplicate_keys(node: yaml.Node, source: str) -> None:
    """PyYAML keeps the last of two equal keys; a routes file with both is a mistake."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    problem = (
                        f"key {key_node.value!r} appears twice in one mapping (first on line "
                        f"{seen[key_node.value]})"
                    )
                    raise RoutesConfigError(
                        f"invalid routes file {source}: line {line}: {problem}",
                        problems=[RoutesFileProblem(None, line, problem)],
                    )
                seen[key_node.value] = line
            _reject_duplicate_keys(value_node, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, source)


def _routes_problem(root: yaml.Node, problem: FieldProblem) -> RoutesFileProblem:
    """``s3[2].dag_id (line 21): <message>``, with the value where the message lacks it."""
    message = problem.message
    if problem.type in {"string_pattern_mismatch", "literal_error", "enum"}:
        message += f" (got {short_repr(problem.input)})"
    line = _line_of(root, problem.location)
    return RoutesFileProblem(format_location(problem.location), line, message)


def _line_of(root: yaml.Node, loc: Location) -> int:
    """The line of the deepest YAML node on ``loc``'s path (the parent, for a missing field).

    A mapping entry is reported at its key's line: ``prod:`` rather than the first line of
    the mapping under it.
    """
    line = root.start_mark.line + 1
    node = root
    for part in loc:
        found = _child(node, part)
        if found is None:
            break
        marker, node = found
        line = marker.start_mark.line + 1
    return line


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """(the node whose line to report, the child node) for one step of a location."""
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == part:
                return key_node, value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item = node.value[part]
        return item, item
    return None


# ---------------------------------------------------------------------------------------------
# The cached loader
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Loaded:
    routes: RoutesFile
    digest: str
    checked_at: float


class RoutesLoader:
    """Serve the routes file, re-reading it at most every ``cache_seconds``."""

    def __init__(
        self,
        location: str,
        *,
        cache_seconds: int,
        ssm_client_factory: ClientFactory | None = None,
        s3_client_factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        bundled_root: Path = BUNDLED_ROOT,
        allowed_environment_names: Collection[str] = (),
        granted_manifest_location: str | None = None,
    ) -> None:
        """``allowed_environment_names``, ``granted_manifest_location``: see `parse_routes`
        (MWAA_ENVIRONMENT_NAMES, SET_MANIFEST_LOCATION)."""
        self._location = parse_location(location)
        self._allowed_environment_names = tuple(allowed_environment_names)
        self._granted_manifest_location = granted_manifest_location
        self._bundled_root = bundled_root
        self._cache_seconds = cache_seconds
        self._ssm_client_factory = ssm_client_factory or _no_client("ssm")
        self._s3_client_factory = s3_client_factory or _no_client("s3")
        self._clock = clock
        self._loaded: _Loaded | None = None

    @property
    def location(self) -> str:
        return self._location.text

    @property
    def bundled(self) -> bool:
        """The file ships with the code: it cannot change without a deployment."""
        return not self._location.refreshable

    def get(self) -> RoutesFile:
        """The routes; raises ``RoutesConfigError`` only if no good file was ever loaded."""
        now = self._clock()
        loaded = self._loaded
        if loaded is None:
            try:
                self._loaded = self._load(now, previous=None)
            except Exception as exc:
                _report_failure("routes file cannot be loaded; events wait for a good one", exc)
                raise
            return self._loaded.routes
        if not self._location.refreshable or now - loaded.checked_at < self._cache_seconds:
            return loaded.routes
        try:
            self._loaded = self._load(now, previous=loaded)
        except Exception as exc:  # any failure: a bad edit, a throttled or missing parameter
            _report_failure("routes refresh failed; serving the last good routes", exc)
            # Try again after another cache period rather than on every event.
            self._loaded = _Loaded(loaded.routes, loaded.digest, now)
        return self._loaded.routes

    def _load(self, now: float, previous: _Loaded | None) -> _Loaded:
        text = self._read()
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if previous is not None and previous.digest == digest:
            return _Loaded(previous.routes, digest, now)
        routes = parse_routes(
            text,
            source=self.location,
            allowed_environment_names=self._allowed_environment_names,
            granted_manifest_location=self._granted_manifest_location,
        )
        logger.info(
            "routes loaded",
            extra={"routes_location": self.location, "routes_sha256": digest[:12]},
        )
        return _Loaded(routes, digest, now)

    def _read(self) -> str:
        kind, target = self._location.kind, self._location.target
        try:
            if kind == "bundled":
                return bundled_path(target, self._bundled_root).read_text(encoding="utf-8")
            if kind == "file":
                return Path(target).read_text(encoding="utf-8")
            if kind == "ssm":
                response = self._ssm_client_factory().get_parameter(
                    Name=target, WithDecryption=True
                )
                return str(response["Parameter"]["Value"])
            bucket, _, key = target.partition("/")
            body = self._s3_client_factory().get_object(Bucket=bucket, Key=key)["Body"]
            return bytes(body.read()).decode("utf-8")
        except RoutesConfigError:
            raise
        except UnicodeDecodeError as exc:
            raise RoutesConfigError(f"routes file {self.location} is not UTF-8: {exc}") from None
        except Exception as exc:
            raise RoutesConfigError(
                f"cannot read routes file {self.location}: {type(exc).__name__}: {exc}"
            ) from exc


def _report_failure(what: str, exc: Exception) -> None:
    """At ERROR, with the loader's whole message (every field path and line), and counted."""
    count(MetricName.ROUTES_INVALID)
    logger.error(what, extra={"error": str(exc)})
