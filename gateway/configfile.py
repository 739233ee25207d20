"""YAML configuration files checked by a pydantic model, with every error naming file and line.

The YAML is composed to a node tree first (``yaml.compose`` with the safe loader: no object tags),
turned into plain Python data, and validated by the model. A validation error's location
(``("diameter", "allowed_peers", 1, "realm")``) is walked back down the node tree to the line of
the value at fault, or of the nearest enclosing one that exists (a missing field is reported at
its mapping). Duplicate keys are errors, not silently last-one-wins. Every error is reported, each
on its own line, not only the first; an unknown key names the key it is probably a typo of.

pydantic's lax mode turns ``true`` into the number 1 and ``1`` into ``true``; in a configuration file
that is a mistake (``window: true``), so after validation every YAML boolean that became a number, and
every YAML number that became a boolean, is reported at its line.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml
import yaml.reader
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocols.errors import ConfigError

__all__ = ["load_yaml_model", "parse_yaml_model", "yaml_line"]

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

_constructor = yaml.SafeLoader("")  # only its scalar resolution is used (int, float, bool, null, str)

_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")  # pydantic's, in front of our own messages


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _to_data(node: Node, file: str) -> Any:
    if isinstance(node, MappingNode):
        data: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError(
                    "YAML merge keys (<<) are not supported: write the keys out", file, _line(key_node)
                )
            key = _to_data(key_node, file)
            if not isinstance(key, str | int):
                raise ConfigError("keys must be plain words", file, _line(key_node))
            if key in data:
                raise ConfigError(f"{key!r} appears twice", file, _line(key_node))
            data[key] = _to_data(value_node, file)
        return data
    if isinstance(node, SequenceNode):
        return [_to_data(item, file) for item in node.value]
    if isinstance(node, ScalarNode):
        return _constructor.construct_object(node, deep=True)
    raise ConfigError(
        "unsupported YAML node", file, _line(node)
    )  # pragma: no cover - compose yields only these


def _node_at(root: Node, location: Sequence[int | str]) -> Node:
    """The deepest node of ``root`` on the path ``location`` (pydantic's error ``loc``)."""
    node = root
    for step in location:
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and str(key_node.value) == str(step):
                    node = value_node
                    break
            else:
                return node
        elif isinstance(node, SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            node = node.value[step]
        else:
            return node
    return node


# --- what a location of a model may hold (for the known keys of an unknown one) ----------------------


def _atoms(annotation: Any) -> list[Any]:
    """``annotation`` without Annotated, Optional and unions: the types a value there may have."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _atoms(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [atom for arg in typing.get_args(annotation) for atom in _atoms(arg)]
    return [annotation]


def _field_name(model: type[pydantic.BaseModel], key: str) -> str | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return name
    return None


def _step(annotation: Any, step: int | str) -> list[Any]:
    """The annotations one step (a key or an index) below a value of type ``annotation``."""
    found: list[Any] = []
    for atom in _atoms(annotation):
        origin = typing.get_origin(atom)
        args = typing.get_args(atom)
        if isinstance(atom, type) and issubclass(atom, pydantic.BaseModel) and isinstance(step, str):
            name = _field_name(atom, step)
            if name is not None:
                found.append(atom.model_fields[name].annotation)
            elif "kind" in atom.model_fields and step in typing.get_args(
                atom.model_fields["kind"].annotation
            ):
                found.append(atom)  # a discriminated union's tag, as pydantic puts it in the location
        elif origin in (tuple, list, Sequence) and isinstance(step, int) and args:
            found.append(args[0])
        elif origin in (dict, Mapping) and len(args) == 2:
            found.append(args[1])
    return found


def _known_keys(model: type[pydantic.BaseModel], location: Sequence[int | str]) -> list[str]:
    """The keys the mapping at ``location`` may have (empty when it cannot be told)."""
    annotations: list[Any] = [model]
    for step in location:
        annotations = [below for annotation in annotations for below in _step(annotation, step)]
    keys: dict[str, None] = {}
    for annotation in annotations:
        for atom in _atoms(annotation):
            if isinstance(atom, type) and issubclass(atom, pydantic.BaseModel):
                for name, info in atom.model_fields.items():
                    keys[info.alias or name] = None
    return list(keys)


def _describe(error: Any, node: Node, model: type[pydantic.BaseModel]) -> str:
    location = tuple(error["loc"])
    where = ".".join(str(step) for step in location)
    message = str(error["msg"])
    for prefix in _PYDANTIC_PREFIXES:
        message = message.removeprefix(prefix)
    if error["type"] == "extra_forbidden" and location:
        key = str(location[-1])
        known = _known_keys(model, location[:-1])
        close = difflib.get_close_matches(key, known, n=1)
        if close:
            message = f"{message}: unknown key {key!r}, did you mean {close[0]!r}?"
        elif known:
            message = f"{message}: unknown key {key!r} (known: {', '.join(known)})"
    elif error["type"] == "string_type" and isinstance(node, ScalarNode) and node.style is None:
        # a bare 12345678, yes or 1.10 is a number or a boolean to YAML before the model sees it
        message = f'{message}: quote it, "{node.value}"'
    return f"{where}: {message}" if where else message


def _coerced(
    data: Any, value: Any, location: tuple[int | str, ...]
) -> list[tuple[tuple[int | str, ...], str]]:
    """Where a YAML boolean became a number, or a YAML number a boolean, in the validated ``value``."""
    if isinstance(data, bool):
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return [(location, f"{str(data).lower()} is not a number")]
        return []
    if isinstance(data, int | float):
        return [(location, f"{data} is not true or false")] if isinstance(value, bool) else []
    found: list[tuple[tuple[int | str, ...], str]] = []
    if isinstance(data, dict):
        for key, item in data.items():
            if isinstance(value, pydantic.BaseModel) and isinstance(key, str):
                name = _field_name(type(value), key)
                if name is not None:
                    found += _coerced(item, getattr(value, name), (*location, key))
            elif isinstance(value, Mapping) and key in value:
                found += _coerced(item, value[key], (*location, key))
    elif isinstance(data, list) and isinstance(value, list | tuple) and len(data) == len(value):
        for index, (item, held) in enumerate(zip(data, value, strict=True)):
            found += _coerced(item, held, (*location, index))
    return found


def _errors(described: list[tuple[str, int]], file: str) -> ConfigError:
    """One ``ConfigError`` at the first error's line; the others follow, one per line, with theirs."""
    (first, line), rest = described[0], described[1:]
    more = len(rest)
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    others = "".join(f"\n{file}:{other_line}: {reason}" for reason, other_line in rest)
    return ConfigError(first + suffix + others, file, line)


def parse_yaml_model(text: str, model: type[ModelT], file: str) -> ModelT:
    """Validate ``text`` (YAML) as ``model``; ``ConfigError`` names ``file``, the line and the reason."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else int(mark.line) + 1
        raise ConfigError(f"not valid YAML: {exc.problem or exc}", file, line) from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"not valid YAML: {exc.reason}", file, None) from None
    if root is None:
        raise ConfigError("the file is empty", file, None)
    try:
        data = _to_data(root, file)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            f"bad value: {exc.problem}", file, None if mark is None else mark.line + 1
        ) from None
    try:
        validated = model.model_validate(data)
    except pydantic.ValidationError as exc:
        described = []
        for error in exc.errors():
            node = _node_at(root, error["loc"])
            described.append((_describe(error, node, model), _line(node)))
        raise _errors(described, file) from None
    coerced = _coerced(data, validated, ())
    if coerced:
        raise _errors(
            [
                (f"{'.'.join(map(str, where))}: {reason}" if where else reason, _line(_node_at(root, where)))
                for where, reason in coerced
            ],
            file,
        )
    return validated


def load_yaml_model(path: str | Path, model: type[ModelT]) -> ModelT:
    """Read ``path`` and validate it as ``model`` (see ``parse_yaml_model``)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file, None) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text (byte {exc.object[exc.start]:#04x})", file, line) from None
    return parse_yaml_model(text, model, file)


def yaml_line(path: str | Path, location: Sequence[int | str]) -> int | None:
    """The line of the value at ``location`` (keys and list indexes, like a pydantic error ``loc``) in the
    YAML file at ``path``, or of the nearest enclosing value that exists; None when the file cannot be
    read or parsed. For errors found after a file was validated (rules across files, channel limits)."""
    try:
        root = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if root is None:
        return None
    return _line(_node_at(root, location))
