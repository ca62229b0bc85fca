"""YAML files validated by pydantic models, with errors that name the file, the line and the reason."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class RoutingError(Exception):
    """A routing (or routing-test) file that cannot be used: names the file, the line and the reason."""


def read_text(path: Path | str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise RoutingError(f"{path}: cannot read {what}: {error.strerror or error}") from None


def load_model(text: str, source: str, model: type[Model], expected: str) -> tuple[Model, yaml.Node | None]:
    """Parse and validate; returns the model and the YAML node tree (for locating later errors)."""
    try:
        document = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(error, "problem", None) or str(error)
        raise RoutingError(f"{where}: invalid YAML: {problem}") from None
    if not isinstance(document, dict):
        raise RoutingError(f"{source}:1: expected a mapping with {expected}")
    try:
        return model.model_validate(document), root
    except ValidationError as error:
        item = error.errors()[0]
        fail_at(source, root, item["loc"], item["msg"].removeprefix("Value error, "))


def fail_at(source: str, root: yaml.Node | None, loc: Sequence[int | str], reason: str) -> NoReturn:
    where = ".".join(str(part) for part in loc) or "file"
    raise RoutingError(f"{source}:{line_of(root, loc)}: {where}: {reason}")


def line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int:
    """The 1-based line of the deepest YAML node the location reaches."""
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line
