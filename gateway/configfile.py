"""YAML configuration files checked by a pydantic model, with every error naming file and line.

The YAML is composed to a node tree first (``yaml.compose`` with the safe loader: no object tags),
turned into plain Python data, and validated by the model. A validation error's location
(``("diameter", "allowed_peers", 1, "realm")``) is walked back down the node tree to the line of
the value at fault, or of the nearest enclosing one that exists (a missing field is reported at
its mapping). Duplicate keys are errors, not silently last-one-wins.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _to_data(node: Node, file: str) -> Any:
    if isinstance(node, MappingNode):
        data: dict[Any, Any] = {}
        for key_node, value_node in node.value:
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


def _describe(error: Any) -> str:
    where = ".".join(str(step) for step in error["loc"])
    message = str(error["msg"])
    return f"{where}: {message}" if where else message


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
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        node = _node_at(root, first["loc"])
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(_describe(first) + suffix, file, _line(node)) from None


def load_yaml_model(path: str | Path, model: type[ModelT]) -> ModelT:
    """Read ``path`` and validate it as ``model`` (see ``parse_yaml_model``)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file, None) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", file, None) from None
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
