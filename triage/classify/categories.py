"""The team's categories: read from the categories file (TRIAGE_CLASSIFIER__CATEGORIES_FILE).

    categories:
      - name: billing
        description: invoices, charges, payment methods
        examples: ["I was billed twice", "¿Dónde descargo mi factura?"]

`TRIAGE_CLASSIFIER__CATEGORIES`, when set, selects some of the file's names (in the file's order).
A file that cannot be used raises CategoriesError with `path:line: reason`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from triage.settings import ClassifierSettings

NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
MIN_EXAMPLES = 2
CATEGORY_HEAD = "category.npz"


class CategoriesError(Exception):
    """The categories file (or the selection of its names) cannot be used."""


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    examples: tuple[str, ...]


def load_categories(settings: ClassifierSettings) -> list[Category]:
    """The categories of the file, narrowed to TRIAGE_CLASSIFIER__CATEGORIES when that is set."""
    path = settings.categories_path()
    categories = read_categories_file(path)
    if settings.categories is None:
        return categories
    by_name = {category.name: category for category in categories}
    unknown = [name for name in settings.categories if name not in by_name]
    if unknown:
        raise CategoriesError(
            f"TRIAGE_CLASSIFIER__CATEGORIES: {', '.join(map(repr, unknown))} not in {path} "
            f"(it has {', '.join(by_name)})"
        )
    return [category for category in categories if category.name in settings.categories]


def category_names(settings: ClassifierSettings) -> list[str]:
    """The names the classifier will output: the classes of a trained category head in
    TRIAGE_CLASSIFIER__MODEL_DIR when there is one, else the categories file's names."""
    if settings.model_dir is not None and (settings.model_dir / CATEGORY_HEAD).is_file():
        try:
            with np.load(settings.model_dir / CATEGORY_HEAD) as head:
                return [str(name) for name in head["classes"]]
        except (OSError, KeyError, ValueError) as error:
            raise CategoriesError(
                f"{settings.model_dir / CATEGORY_HEAD}: not a category head ({error})"
            ) from None
    return [category.name for category in load_categories(settings)]


def read_categories_file(path: Path) -> list[Category]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CategoriesError(f"{path}: {error.strerror or error}") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        # an unclosed quote is reported at the end of the file; its context is where it opened
        mark = getattr(error, "context_mark", None) or getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise CategoriesError(f"{path}:{line}: not valid YAML ({getattr(error, 'problem', error)})") from None

    def fail(node: yaml.Node | None, reason: str) -> CategoriesError:
        line = node.start_mark.line + 1 if node is not None else 1
        return CategoriesError(f"{path}:{line}: {reason}")

    if not isinstance(root, yaml.MappingNode):
        raise fail(root, "expected a mapping with a `categories:` list")
    top = {key.value: value for key, value in root.value}
    if set(top) - {"categories"}:
        key = next(k for k, _ in root.value if k.value != "categories")
        raise fail(key, f"unknown key {key.value!r} (expected only `categories`)")
    entries = top.get("categories")
    if not isinstance(entries, yaml.SequenceNode) or not entries.value:
        raise fail(entries or root, "`categories` must be a non-empty list")
    categories: list[Category] = []
    for entry in entries.value:
        category = _category(entry, fail)
        if any(seen.name == category.name for seen in categories):
            raise fail(entry, f"category {category.name!r} is defined twice")
        categories.append(category)
    return categories


def _category(entry: yaml.Node, fail) -> Category:
    if not isinstance(entry, yaml.MappingNode):
        raise fail(entry, "each category is a mapping with name, description and examples")
    fields = {key.value: (key, value) for key, value in entry.value}
    for key, _ in fields.values():
        if key.value not in ("name", "description", "examples"):
            raise fail(key, f"unknown key {key.value!r} (expected name, description, examples)")
    for required in ("name", "description", "examples"):
        if required not in fields:
            raise fail(entry, f"category without `{required}`")
    name_node, description_node, examples_node = (fields[k][1] for k in ("name", "description", "examples"))
    name = _text(name_node, "name", fail)
    if not NAME.match(name):
        raise fail(name_node, f"name {name!r} must be lower case letters, digits, _ or -")
    description = _text(description_node, "description", fail)
    if not isinstance(examples_node, yaml.SequenceNode):
        raise fail(examples_node, f"`examples` of {name!r} must be a list of messages")
    examples = tuple(_text(node, "example", fail) for node in examples_node.value)
    if len(examples) < MIN_EXAMPLES:
        raise fail(examples_node, f"category {name!r} needs at least {MIN_EXAMPLES} examples")
    return Category(name, description, examples)


def _text(node: yaml.Node, what: str, fail) -> str:
    if not isinstance(node, yaml.ScalarNode) or not node.value.strip():
        raise fail(node, f"{what} must be non-empty text")
    return node.value.strip()
