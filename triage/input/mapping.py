"""The input mapping file (`TRIAGE_INPUT__MAPPING`): each field of the message contract as a JMESPath
expression over the incoming value.

    id: ticket.id
    body: comment.body
    channel: "'email'"                     # a constant: a JMESPath raw string
    customer.name: join(' ', [requester.first_name, requester.last_name][?@])
    priority_hint: ...                     # refused: not a field of the contract
    metadata.brand: {value: acme}          # a constant of any YAML type

Every expression is compiled at start: a bad one, or an unknown field, stops the worker with one line
naming the field and the file's line. A record that maps to no `id` or no `body` is dead-lettered
`unmappable`, naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jmespath
import yaml
from jmespath.exceptions import JMESPathError

from triage.message import Customer, InvalidMessage, SupportMessage, Survey, Ticket

REQUIRED = ("id", "body")
IDENTIFIERS = {"id", "conversation_id", "customer.id", "customer.phone", "ticket.id"}  # numbers become text


class MappingError(Exception):
    """The mapping file cannot be used: names the file, the line and the field."""


def contract_fields() -> set[str]:
    """The fields a mapping may set: the contract's, with its nested models' fields dotted."""
    fields = set()
    for name in SupportMessage.model_fields:
        nested = {"customer": Customer, "ticket": Ticket, "survey": Survey}.get(name)
        fields.update(f"{name}.{sub}" for sub in nested.model_fields) if nested else fields.add(name)
    return fields


@dataclass(frozen=True)
class Rule:
    field: str
    expression: Any | None  # a compiled JMESPath expression, or None for a constant
    constant: Any = None
    source: str = ""

    def value(self, document: Any) -> Any:
        return self.constant if self.expression is None else self.expression.search(document)


class Mapping:
    def __init__(self, rules: list[Rule], path: Path | None = None) -> None:
        self.rules = rules
        self.path = path

    @classmethod
    def load(cls, path: Path) -> Mapping:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise MappingError(f"{path}: cannot read the input mapping: {error.strerror}") from None
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: Path | None = None) -> Mapping:
        where = str(path or "input mapping")
        try:
            root = yaml.compose(text)
        except yaml.YAMLError as error:
            raise MappingError(f"{where}: not YAML: {error}") from None
        if root is None or not isinstance(root, yaml.MappingNode):
            raise MappingError(f"{where}: expected `field: expression` lines")
        known = contract_fields()
        rules = []
        for key_node, value_node in root.value:
            line = key_node.start_mark.line + 1
            field = key_node.value
            if field not in known and not field.startswith("metadata."):
                raise MappingError(
                    f"{where}:{line}: {field}: not a field of the message contract "
                    f"(one of {', '.join(sorted(known))}, or metadata.KEY)"
                )
            rules.append(_rule(field, value_node, f"{where}:{line}"))
        missing = [field for field in REQUIRED if field not in {rule.field for rule in rules}]
        if missing:
            raise MappingError(f"{where}: no expression for {', '.join(missing)} (required)")
        return cls(rules, path)

    def apply(self, document: Any) -> dict[str, Any]:
        """The contract-shaped message of a document; fields that map to nothing are left out."""
        message: dict[str, Any] = {}
        for rule in self.rules:
            try:
                value = rule.value(document)
            except JMESPathError as error:  # e.g. join() over a list holding a number
                raise InvalidMessage("unmappable", f"{rule.field}: `{rule.source}`: {error}") from None
            if value is None:
                continue
            if rule.field in IDENTIFIERS and isinstance(value, int | float) and not isinstance(value, bool):
                value = str(int(value)) if float(value).is_integer() else str(value)
            _put(message, rule.field, value)
        for field in REQUIRED:
            if field == "body" and "survey" in message:
                continue  # a survey answer's comment may be empty
            if message.get(field) in (None, ""):
                rule = next(rule for rule in self.rules if rule.field == field)
                raise InvalidMessage("unmappable", f"{field}: `{rule.source}` gives nothing for this record")
        return message


def _rule(field: str, node: yaml.Node, where: str) -> Rule:
    if isinstance(node, yaml.MappingNode):
        value = yaml.safe_load(yaml.serialize(node))
        if set(value) != {"value"}:
            raise MappingError(f"{where}: {field}: a constant is written {{value: ...}}")
        return Rule(field, None, constant=value["value"], source=repr(value["value"]))
    if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
        raise MappingError(f"{where}: {field}: expected a JMESPath expression")
    source = str(node.value)
    try:
        return Rule(field, jmespath.compile(source), source=source)
    except JMESPathError as error:
        detail = str(error).splitlines()[0]
        raise MappingError(f"{where}: {field}: bad JMESPath expression `{source}`: {detail}") from None


def _put(message: dict[str, Any], field: str, value: Any) -> None:
    head, _, rest = field.partition(".")
    if rest:
        message.setdefault(head, {})[rest] = value
    else:
        message[head] = value
